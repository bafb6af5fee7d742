"""Evaluation shared by ranks (issue 22), with 2 gloo ranks on the CPU: each rank generates and scores its blocks, rank 0
collects them in order, and the scores are bitwise those of one process (Stacked MNIST's modes, KL, gate and
fd_mnist_classifier; an image FID through a local feature network)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from roadmap.fid import fid_against_data
from roadmap.registry import create_dataset
from roadmap.trainer import Samples
from stackedmnist.data import EVAL_BLOCK, StackedMNIST

N_MNIST = 2 * EVAL_BLOCK + 300  # 3 blocks: rank 0 scores blocks 0 and 2, rank 1 block 1 (the last round is uneven)
N_FID = 700  # 3 blocks of 256, 256 and 188 images


class _TinyGenerator(torch.nn.Module):
    """z [N, 8] -> images [N, 3, 16, 16] in [-1, 1]; counts the samples it makes."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 3 * 16 * 16)
        self.made = 0

    def forward(self, z, labels=None):
        self.made += len(z)
        return torch.tanh(3 * self.linear(z)).view(-1, 3, 16, 16)


def _samples(rank=0, world=1):
    torch.manual_seed(0)  # the same weights on every rank, as after the trainer's broadcast
    return Samples(_TinyGenerator(), 8, 0, torch.device("cpu"), rank, world)


def _features(images):
    """A fixed 4-d feature of images in [-1, 1] (a stand-in for Inception, which needs a download)."""
    return torch.stack([images.mean((1, 2, 3)), images.std((1, 2, 3)), images[:, 0].mean((1, 2)), images[:, 2].amax((1, 2))], 1)


def _image_set(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(16):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{index:02d}.png")
    return create_dataset("imagefolder", path=str(folder))


def _scores(samples, mnist_root, image_folder):
    """(Stacked MNIST scores, FID with the local features, samples this rank generated)."""
    mnist = StackedMNIST(mnist_root, 16).evaluate(samples, n=N_MNIST)
    fid = fid_against_data(samples, create_dataset("imagefolder", path=str(image_folder)), N_FID, features=_features)
    return mnist, fid, samples.generator.made


def _rank(rank: int, world: int, store: str, out: str, mnist_root: str, image_folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    with open(f"{out}.{rank}", "w") as stream:
        json.dump(_scores(_samples(rank, world), mnist_root, image_folder), stream)
    dist.destroy_process_group()


def test_two_ranks_score_what_one_process_scores(tmp_path):
    """Equal exactly, not within a tolerance: each block holds the samples one process makes at its positions (same
    weights, latents and generator batches), is scored in the batches one process uses, travels to rank 0 as pickled
    tensors (lossless) and joins the others in block order, so every reduction sees the same arrays."""
    root = os.environ.get("R3BENCH_DATA")
    if not root or not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.skip("R3BENCH_DATA does not point at a folder holding MNIST/raw")
    _image_set(tmp_path / "set")
    out = str(tmp_path / "rank")
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), out, root, str(tmp_path / "set")), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank.{rank}").read_text()) for rank in range(2)]
    mnist, fid, made = _scores(_samples(), root, tmp_path / "set")
    assert ranks[0][:2] == [mnist, fid] and mnist["n"] == N_MNIST and fid > 0
    assert ranks[1][:2] == [{}, None]  # rank 1 sent its share; rank 0 holds the scores
    # The work was shared: rank 1 generated block 1 of each evaluation, rank 0 the others, one process all.
    assert made == N_MNIST + N_FID
    assert ranks[1][2] == EVAL_BLOCK + 256 and ranks[0][2] == made - ranks[1][2]
