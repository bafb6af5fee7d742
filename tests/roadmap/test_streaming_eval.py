"""Streaming evaluation (issue 22): generated and real images go through FID one block at a time on the
training device; the value is the whole-tensor path's (clean-fid's features, their exact moments), and host
memory does not grow with n."""
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from roadmap.fid import _custom_extractor, _identity_resize, fid_against_data, real_samples, write_pngs
from roadmap.moments import distance_of_gaussians
from roadmap.registry import create_dataset
from roadmap.trainer import Samples


class _TinyGenerator(torch.nn.Module):
    """z [N, 8] -> images [N, 3, 16, 16] in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(8, 3 * 16 * 16)

    def forward(self, z, labels=None):
        return torch.tanh(self.linear(z)).view(-1, 3, 16, 16)


def _features(images):
    """A fixed 6-d feature of images in [-1, 1] (a stand-in for Inception, which needs a download)."""
    return torch.stack([images.mean((1, 2, 3)), images.std((1, 2, 3)), images[:, 0].mean((1, 2)),
                        images[:, 1].mean((1, 2)), images[:, 2].amax((1, 2)), images[:, :, :8].mean((1, 2, 3))], 1)


def _data(folder, count=16):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{index:02d}.png")
    return create_dataset("imagefolder", path=str(folder))


def _samples():
    torch.manual_seed(0)
    return Samples(_TinyGenerator(), 8, 0, torch.device("cpu"))


def _folder_features(images, folder) -> np.ndarray:
    """clean-fid's own features of images [N, 3, H, W] in [-1, 1], written as PNGs and read back by its folder pipeline."""
    from cleanfid.fid import get_folder_features

    write_pngs(images, folder)
    return get_folder_features(str(folder), _custom_extractor(_features, torch.device("cpu")), num_workers=0, batch_size=256,
                               device=torch.device("cpu"), custom_fn_resize=_identity_resize, verbose=False)


def test_streaming_fid_is_the_whole_tensor_fid(tmp_path):
    """The streamed value is clean-fid's features' exact Frechet distance (means and covariances in float64) within 1e-9;
    clean-fid's own value (`compute_fid` on the folders: the whole-tensor path) takes the features' mean in float32,
    which moves this near-zero distance by 4e-6 relative (measured), so it is compared within 1e-4."""
    data, samples = _data(tmp_path / "set"), _samples()
    streamed = fid_against_data(samples, data, 600, features=_features)  # 3 blocks (256, 256, 88)
    whole = fid_against_data(lambda n: samples(n), data, 600, features=_features)  # a plain function: all n at once
    fake, real = (np.asarray(_folder_features(images, tmp_path / name), np.float64)
                  for images, name in ((samples(600), "fake"), (real_samples(data, 600), "real")))
    exact = distance_of_gaussians((fake.mean(0), np.cov(fake, rowvar=False)), (real.mean(0), np.cov(real, rowvar=False)))
    assert streamed == pytest.approx(exact, rel=1e-9) and streamed == pytest.approx(whole, rel=1e-4) and streamed > 0.01
    chunks = list(samples.chunks(600))
    assert [len(chunk) for chunk in chunks] == [256, 256, 88] and torch.equal(torch.cat(chunks), samples(600))


def _peak_growth(n: int, folder) -> int:
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, __file__, str(n), str(folder)], capture_output=True, text=True, timeout=900,
                         env=environment, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["growth"]


def test_peak_memory_of_a_50k_evaluation_does_not_grow_with_n(tmp_path):
    """50,000 samples at 16 px are 154 MB of float32 (generated) + 154 MB (real) held whole; streamed, the
    process's peak does not grow from n = 2,000 to n = 50,000 beyond noise: measured +0.3 MB (185.0 -> 185.3 MB)
    with running moments; +14.5 MB when the features and clean-fid's PNG file lists were kept; the whole-tensor
    path, a plain function for `generate`, measured +317 MB."""
    _data(tmp_path / "set")
    small, large = _peak_growth(2_000, tmp_path / "set"), _peak_growth(50_000, tmp_path / "set")
    assert abs(large - small) < 4 * 2**20, (small, large)


def _peak_resident() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries the spawning process's
    peak into it across exec, so a child of a large pytest process would report the parent's."""
    with open("/proc/self/status") as stream:
        return next(int(line.split()[1]) * 1024 for line in stream if line.startswith("VmHWM:"))


if __name__ == "__main__":
    n, folder = int(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(1)
    data, samples = create_dataset("imagefolder", path=folder), _samples()
    before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
    fid_against_data(samples, data, n, features=_features)
    print(json.dumps(dict(growth=_peak_resident() - before)))
