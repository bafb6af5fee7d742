"""Shared test set-up: small CPU thread count, data root from R3BENCH_DATA, temporary results roots."""
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def mnist_root():
    """The MNIST root (R3BENCH_DATA); tests that need real MNIST skip without it."""
    root = os.environ.get("R3BENCH_DATA")
    if not root or not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.skip("R3BENCH_DATA does not point at a folder holding MNIST/raw")
    return Path(root).resolve()  # absolute: tests link to it from temporary folders and run commands elsewhere
