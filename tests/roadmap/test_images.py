"""Image folder / zip data sets on tiny generated PNG sets."""
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from roadmap.errors import ConfigError
from roadmap.registry import create_dataset


def _write_set(folder, count=6, size=8, labels=True):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        array = np.zeros((size, size, 3), np.uint8)
        array[:, : size // 2] = 255  # left half white, right half black: a flip is visible
        array[0, 0] = (index * 40, 0, 0)
        Image.fromarray(array).save(folder / f"img{index}.png")
        names.append(f"img{index}.png")
    if labels:
        (folder / "dataset.json").write_text(json.dumps({"labels": [[n, i % 3] for i, n in enumerate(names)]}))
    return names


def test_folder_samples_range_shape_and_labels(tmp_path):
    _write_set(tmp_path / "set")
    data = create_dataset("imagefolder", path=str(tmp_path / "set"), resolution=8, conditional=True)
    images, labels = data.sample(16, torch.Generator().manual_seed(0))
    assert images.shape == (16, 3, 8, 8) and images.dtype == torch.float32
    assert images.min().item() == -1.0 and images.max().item() == 1.0
    assert data.num_classes == 3 and labels.dtype == torch.int64
    # Labels follow dataset.json: image i has class i % 3 and red value 40 i at pixel (0, 0).
    red = ((images[:, 0, 0, 0] + 1) * 127.5).round().long()
    assert torch.equal(labels, (red // 40) % 3)


def test_xflip_flips_about_half(tmp_path):
    _write_set(tmp_path / "set", labels=False)
    data = create_dataset("imagefolder", path=str(tmp_path / "set"), xflip=True)
    images, labels = data.sample(400, torch.Generator().manual_seed(0))
    assert labels is None
    flipped = (images[:, 1, 4, 0] < 0).float()  # left column black after a flip
    assert 0.4 < flipped.mean().item() < 0.6
    plain, _ = create_dataset("imagefolder", path=str(tmp_path / "set")).sample(50, torch.Generator().manual_seed(0))
    assert (plain[:, 1, 4, 0] > 0).all()


def test_zip_matches_folder(tmp_path):
    names = _write_set(tmp_path / "set")
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:
        for name in names + ["dataset.json"]:
            archive.write(tmp_path / "set" / name, name)
    a = create_dataset("imagefolder", path=str(tmp_path / "set"), conditional=True, cache=False)
    b = create_dataset("imagefolder", path=str(tmp_path / "set.zip"), conditional=True)
    for data in (a, b):
        assert data.count == 6
    xa, la = a.sample(8, torch.Generator().manual_seed(1))
    xb, lb = b.sample(8, torch.Generator().manual_seed(1))
    assert torch.equal(xa, xb) and torch.equal(la, lb)


def test_resolution_mismatch_is_one_clear_error(tmp_path):
    _write_set(tmp_path / "set", size=8)
    with pytest.raises(ConfigError, match="resolution.*8x8, expected 64x64"):
        create_dataset("imagefolder", path=str(tmp_path / "set"), preset="ffhq64")
    with pytest.raises(ConfigError, match="does not match preset"):
        create_dataset("imagefolder", path=str(tmp_path / "set"), preset="ffhq64", resolution=8)
    with pytest.raises(ConfigError, match="path"):
        create_dataset("imagefolder", path=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="conditional"):
        _write_set(tmp_path / "nolabels", labels=False)
        create_dataset("imagefolder", path=str(tmp_path / "nolabels"), conditional=True)


def test_cifar10_without_data_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="root"):
        create_dataset("cifar10", root=str(tmp_path))
    with pytest.raises(ConfigError, match="resolution"):
        create_dataset("cifar10", root=str(tmp_path), resolution=64)
