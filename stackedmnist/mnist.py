"""MNIST digits read from a local root (no downloads), shared by the Stacked MNIST data set and its mode classifier (Tables 1, 3)."""
import functools
import os
from pathlib import Path

from roadmap.errors import ConfigError


def data_root(root=None) -> Path:
    """The MNIST root: `root` if given, else $R3BENCH_DATA; ConfigError when neither holds MNIST/raw."""
    root = root or os.environ.get("R3BENCH_DATA")
    if not root:
        raise ConfigError("dataset_args.root: no MNIST root given; set R3BENCH_DATA, dataset_args.root or --data-root "
                          "(a folder holding MNIST/raw/*-ubyte)")
    if not (Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        raise ConfigError(f"dataset_args.root: no MNIST under {str(root)!r} (expected MNIST/raw/train-images-idx3-ubyte)")
    return Path(root)


@functools.lru_cache(maxsize=4)
def _load(root: str, train: bool):
    from torchvision.datasets import MNIST

    mnist = MNIST(root, train=train, download=False)
    return mnist.data.contiguous(), mnist.targets.long()


def load_mnist(root=None, train: bool = True):
    """MNIST digits uint8 [N, 28, 28] and labels int64 [N] (read once per process)."""
    return _load(str(data_root(root)), train)
