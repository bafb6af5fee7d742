"""Multi-GPU as the official code does it (issue 22), with 2 gloo ranks on the CPU: per-rank augmentation and
noise streams, parameters broadcast from rank 0; rank 0 keeps the single-process streams."""
import json

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from roadmap import trainer
from roadmap.config import resolve
from roadmap.registry import create_model


def _rank(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    config = resolve(dict(seed=3))
    torch.manual_seed(100 + rank)  # different weights on each rank before the broadcast
    pair = create_model("small_resnet", width=4, blocks=1, resolution=16)
    before = float(next(pair.discriminator.parameters()).sum())
    trainer.broadcast_from_rank0((pair.generator, pair.discriminator), world)
    augment_rng = torch.Generator().manual_seed(config.seed * 2 + 3)
    torch.manual_seed(config.seed)
    trainer._rank_streams(config, rank, 0, augment_rng)
    result = dict(before=before, after=[float(p.sum()) for p in pair.discriminator.parameters()] + [float(p.sum()) for p in pair.generator.parameters()],
                  augment=torch.rand(4, generator=augment_rng).tolist(), noise=torch.randn(4).tolist())
    with open(f"{out}.{rank}", "w") as stream:
        json.dump(result, stream)
    dist.destroy_process_group()


def test_two_ranks_share_weights_and_draw_their_own_augmentation_and_noise(tmp_path):
    out = str(tmp_path / "rank")
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), out), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank.{rank}").read_text()) for rank in range(2)]
    assert ranks[0]["before"] != ranks[1]["before"]  # the ranks did build different weights
    assert ranks[0]["after"] == ranks[1]["after"]  # rank 0's, everywhere
    assert ranks[0]["augment"] != ranks[1]["augment"] and ranks[0]["noise"] != ranks[1]["noise"]
    single = torch.Generator().manual_seed(3 * 2 + 3)
    torch.manual_seed(3)
    assert ranks[0]["augment"] == torch.rand(4, generator=single).tolist()  # rank 0: the single-process streams
    assert ranks[0]["noise"] == torch.randn(4).tolist()


def test_rank_seeds_are_distinct_and_stable():
    seeds = {trainer.rank_seed(0, rank, stream, step) for rank in (1, 2, 3) for stream in ("torch", "augment") for step in (0, 100)}
    assert len(seeds) == 12 and all(0 <= seed < 2**63 for seed in seeds)
    assert trainer.rank_seed(5, 1, "augment") == trainer.rank_seed(5, 1, "augment")
