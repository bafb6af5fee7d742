"""The image loader (roadmap/loader.py): workers or in-process, the same images in the same order for a seed (issue 22).

Bitwise against the data set's own `sample` (the contract every earlier run used): indices, x-flips
and labels, per rank slice; and a whole training run with 2 workers equals one decoding in-process.
"""
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from roadmap import images as images_module
from roadmap.config import resolve
from roadmap.loader import ImageLoader, take
from roadmap.registry import create_dataset
from roadmap.trainer import train


def _write_set(folder, count=12, size=16):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"img{index:02d}.png")
        names.append(f"img{index:02d}.png")
    (folder / "dataset.json").write_text(json.dumps({"labels": [[n, i % 3] for i, n in enumerate(names)]}))
    with zipfile.ZipFile(folder.with_suffix(".zip"), "w") as archive:
        for name in names + ["dataset.json"]:
            archive.write(folder / name, name)
    return folder


@pytest.mark.parametrize("kind", ["folder", "zip"])
@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_are_the_sampled_batches_bitwise(tmp_path, kind, workers):
    folder = _write_set(tmp_path / "set")
    path = folder if kind == "folder" else folder.with_suffix(".zip")
    data = create_dataset("imagefolder", path=str(path), xflip=True, conditional=True, cache=False)  # decoded per batch
    reference_rng = torch.Generator().manual_seed(7)
    reference = [data.sample(6, reference_rng) for _ in range(5)]
    for part in (slice(0, 6), slice(3, 6)):  # one rank, and the second of two ranks
        rng = torch.Generator().manual_seed(7)
        batches = take(ImageLoader(data, 6, part, rng, "cpu", workers=workers, prefetch=2), rng, 5)
        for (real, labels), (expected_real, expected_labels) in zip(batches, reference):
            assert torch.equal(real, expected_real[part]) and torch.equal(labels, expected_labels[part])
        assert torch.equal(rng.get_state(), reference_rng.get_state())  # the run's generator moved with what was consumed
    flips = [not torch.equal(real, data.sample(6, torch.Generator().manual_seed(7))[0]) for real, _ in reference[1:]]
    assert any(flips)  # the batches differ from each other: the comparison above has content


def test_a_run_with_loader_workers_is_the_run_decoding_in_process(tmp_path, monkeypatch):
    """Whole training runs on a lazily decoded folder: 2 workers, prefetch 2, vs in-process; same metrics, same weights."""
    from roadmap import fid

    def offline(*args, **kwargs):
        raise fid.FidUnavailable("offline test")

    monkeypatch.setattr(fid, "fid_against_data", offline)
    folder = _write_set(tmp_path / "set")
    rows = []
    for workers in (0, 2):
        config = resolve(dict(model="E", model_args=dict(preset="stackedmnist", width=1 / 32, resolution=16, blocks=1),
                              dataset="imagefolder", dataset_args=dict(path=str(folder), cache=False), xflip=True,
                              batch=4, duration_kimg=0.016, tick_kimg=0.008, data_workers=workers))
        run = tmp_path / f"run{workers}"
        with pytest.warns(UserWarning, match="offline"):
            assert train(config, run)["status"] == "completed"
        rows.append(([{k: v for k, v in json.loads(line).items() if "seconds" not in k}
                      for line in (run / "metrics.jsonl").read_text().splitlines()],
                     torch.load(run / "checkpoint.pt", weights_only=False)["generator"]))
    assert rows[0][0] == rows[1][0] and len(rows[0][0]) == 2
    assert all(torch.equal(rows[0][1][key], rows[1][1][key]) for key in rows[0][1])


def test_zip_reader_reopens_in_each_process(tmp_path):
    folder = _write_set(tmp_path / "set", count=2)
    reader = images_module._ZipReader(folder.with_suffix(".zip"))
    first = reader.read("img00.png")
    opened = reader.archive
    reader.pid = -1  # as seen from a forked worker
    assert reader.read("img00.png") == first and reader.archive is not opened
