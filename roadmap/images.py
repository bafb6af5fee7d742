"""Image data sets for the roadmap presets (paper Section 4, Table 9): CIFAR-10 and folders/zips of images.

Both return samples [N, 3, R, R] in [-1, 1] (float32) and int64 labels when conditional, with
optional random x-flips. `imagefolder` reads a folder or a .zip of PNG/JPEG files that are
already at the preset resolution (like StyleGAN's dataset_tool output); class labels come from
an optional StyleGAN-style `dataset.json` ({"labels": [[relative path, class], ...]}).
Evaluation is clean-fid's Inception FID (roadmap.fid), `fid: null` when the weights cannot be had.
"""
import io
import json
import math
import os
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from roadmap.errors import ConfigError, unknown
from roadmap.presets import PRESETS
from roadmap.registry import register_dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
CACHE_BYTES = 2 << 30  # imagefolder keeps decoded images in memory up to this size (uint8)
FID_SAMPLES = 50_000  # the paper's FID protocol (FID-50k against the training set)


def expected_resolution(resolution, preset):
    """The resolution asked for: `resolution` if given, else the preset's, else None (take the data's)."""
    if preset is not None:
        if preset not in PRESETS:
            raise unknown("preset", preset, PRESETS)
        preset_resolution = PRESETS[preset]["resolution"]
        if resolution is not None and resolution != preset_resolution:
            raise ConfigError(f"dataset_args.resolution: {resolution} does not match preset {preset!r} ({preset_resolution})")
        resolution = preset_resolution
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 4):
        raise ConfigError(f"dataset_args.resolution: expected an integer >= 4, got {resolution!r}")
    return resolution


def _decode(data: bytes) -> np.ndarray:
    """Image file bytes -> uint8 [3, H, W] (grayscale is repeated, alpha dropped)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        array = np.array(image.convert("RGB"))  # a writable copy
    return array.transpose(2, 0, 1)


class ImageDataSet:
    """Images held as uint8 [N, 3, R, R] (`images`), or decoded lazily from `read(i)` for big folders."""

    def __init__(self, name, count, read, resolution, labels=None, num_classes=0, xflip=False, fid_samples=FID_SAMPLES):
        self.name, self.count, self.read = name, count, read
        self.shape = (3, resolution, resolution)
        self.labels = labels  # int64 [count] or None
        self.num_classes = num_classes
        self.xflip, self.fid_samples = bool(xflip), fid_samples

    def uint8(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 [len(index), 3, R, R] of the images at `index` (no flips)."""
        return torch.stack([torch.as_tensor(self.read(int(i))) for i in index])

    def sample(self, batch_size: int, generator: torch.Generator):
        index, flip = self.draw(batch_size, generator)
        images = self.uint8(index).float() / 127.5 - 1.0
        if flip is not None:
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        labels = self.labels[index] if self.num_classes else None
        return images, labels

    def draw(self, batch_size: int, generator: torch.Generator):
        """(image indices int64 [N], x-flips bool [N] or None): everything random about a batch, drawn from
        `generator` as `sample` draws it, so that a loader (roadmap/loader.py) can decode the batch elsewhere."""
        index = torch.randint(self.count, (batch_size,), generator=generator)
        flip = torch.rand(batch_size, generator=generator) < 0.5 if self.xflip else None
        return index, flip

    def decode(self, index: torch.Tensor, flip) -> tuple:
        """(uint8 [N, 3, R, R] with the flips applied, labels [N] or None) of drawn indices: the part of
        `sample` that reads images, run in loader workers."""
        images = self.uint8(index)
        if flip is not None:
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        return images, self.labels[index] if self.num_classes else None

    def evaluate(self, generate, n: int = None) -> dict:
        """Inception FID (clean-fid) of n generated samples against the training images; null offline."""
        from roadmap.fid import FidUnavailable, fid_against_data

        try:
            return dict(fid=fid_against_data(generate, self, n or self.fid_samples))
        except FidUnavailable as error:
            warnings.warn(str(error))
            return dict(fid=None)

    def save_samples(self, samples: torch.Tensor, path) -> None:
        save_image_grid(samples, path)


def save_image_grid(samples: torch.Tensor, path) -> None:
    """An image grid PNG of samples [N, C, R, R] in [-1, 1] (clamped), ceil(sqrt(N)) per row, written atomically."""
    import io

    from torchvision.utils import save_image

    from roadmap import files

    grid = (samples.detach().float().cpu().clamp(-1, 1) + 1) / 2
    buffer = io.BytesIO()
    save_image(grid, buffer, format="png", nrow=math.ceil(math.sqrt(len(samples))), padding=1)
    files.write_bytes(path, buffer.getvalue())


def _check_shape(name, shape, resolution, where):
    if shape[1:] != (resolution, resolution):
        raise ConfigError(f"dataset_args.resolution: images in {where} are {shape[2]}x{shape[1]}, "
                          f"expected {resolution}x{resolution} (resize them first; {name} does not resample)")


@register_dataset("cifar10")
def cifar10(*, root: Optional[str] = None, resolution: Optional[int] = None, preset: Optional[str] = None, xflip: bool = False,
            conditional: bool = True, download: bool = False, fid_samples: int = FID_SAMPLES) -> ImageDataSet:
    """CIFAR-10 training set (50,000 32x32 images, 10 classes) through torchvision; root from `root` or $R3BENCH_DATA."""
    import os

    from torchvision.datasets import CIFAR10

    resolution = expected_resolution(resolution, preset) or 32
    if resolution != 32:
        raise ConfigError(f"dataset_args.resolution: CIFAR-10 is 32x32, got {resolution}")
    root = root or os.environ.get("R3BENCH_DATA")
    if not root:
        raise ConfigError("dataset_args.root: no CIFAR-10 root given and $R3BENCH_DATA is unset")
    try:
        data = CIFAR10(root, train=True, download=download)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise ConfigError(f"dataset_args.root: CIFAR-10 not found under {root} ({error}); pass download=true online") from None
    images = torch.as_tensor(data.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(data.targets, dtype=torch.int64)
    return ImageDataSet("cifar10", len(images), lambda i: images[i], 32, labels, 10 if conditional else 0, xflip, fid_samples)


class _ZipReader:
    """A zip archive opened once per process: loader workers forked from the training process would
    otherwise share one file offset and read each other's members."""

    def __init__(self, path: Path):
        self.path, self.pid, self.archive = path, None, None

    def _open(self) -> zipfile.ZipFile:
        if self.pid != os.getpid():
            self.archive, self.pid = zipfile.ZipFile(self.path), os.getpid()
        return self.archive

    def namelist(self) -> list:
        return self._open().namelist()

    def read(self, name: str) -> bytes:
        return self._open().read(name)


def _list_images(path: Path):
    """(sorted relative names, reader(name) -> bytes) for a folder or a zip of images."""
    if path.is_dir():
        names = sorted(str(p.relative_to(path)).replace("\\", "/") for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        return names, lambda name: (path / name).read_bytes(), lambda name: (path / name).read_text() if (path / name).exists() else None
    if path.suffix.lower() == ".zip" and path.is_file():
        archive = _ZipReader(path)
        members = set(archive.namelist())
        names = sorted(n for n in members if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
        return names, archive.read, lambda name: archive.read(name).decode() if name in members else None
    raise ConfigError(f"dataset_args.path: {str(path)!r} is neither a folder nor a .zip of images")


@register_dataset("imagefolder")
def imagefolder(*, path: Optional[str] = None, resolution: Optional[int] = None, preset: Optional[str] = None, xflip: bool = False,
                conditional: bool = False, max_images: Optional[int] = None, cache: Optional[bool] = None,
                fid_samples: int = FID_SAMPLES) -> ImageDataSet:
    """A folder or .zip of PNG/JPEG images at the preset resolution (FFHQ, ImageNet); labels from dataset.json."""
    if not path:
        raise ConfigError("dataset_args.path: required (a folder or .zip of images)")
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"dataset_args.path: {str(path)!r} does not exist")
    names, read_bytes, read_text = _list_images(path)
    if max_images is not None:
        names = names[:max_images]
    if not names:
        raise ConfigError(f"dataset_args.path: no .png/.jpg images in {str(path)!r}")
    first = _decode(read_bytes(names[0]))
    resolution = expected_resolution(resolution, preset) or first.shape[1]
    _check_shape("imagefolder", first.shape, resolution, str(path))
    labels, num_classes = None, 0
    if conditional:
        meta = read_text("dataset.json")
        if meta is None:
            raise ConfigError(f"dataset_args.conditional: {str(path)!r} has no dataset.json with labels")
        table = dict(json.loads(meta)["labels"])
        missing = [n for n in names if n not in table]
        if missing:
            raise ConfigError(f"dataset_args.conditional: dataset.json has no label for {missing[0]!r}")
        labels = torch.tensor([int(table[n]) for n in names], dtype=torch.int64)
        num_classes = int(labels.max()) + 1

    def read(index: int) -> np.ndarray:
        image = _decode(read_bytes(names[index]))
        _check_shape("imagefolder", image.shape, resolution, names[index])
        return image

    if cache is None:  # decode once when the set fits in CACHE_BYTES; large sets (FFHQ-256) stay lazy
        cache = len(names) * 3 * resolution * resolution <= CACHE_BYTES
    if cache:
        stack = torch.stack([torch.as_tensor(read(i)) for i in range(len(names))])
        return ImageDataSet(path.stem, len(names), lambda i: stack[i], resolution, labels, num_classes, xflip, fid_samples)
    return ImageDataSet(path.stem, len(names), read, resolution, labels, num_classes, xflip, fid_samples)
