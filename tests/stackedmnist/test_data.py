"""Stacked MNIST data: shapes, ranges, the 2-pixel pad, mode labels, errors, the sample grid."""
import pytest
import torch
from PIL import Image

from roadmap.errors import ConfigError
from roadmap.registry import create_dataset
from stackedmnist.data import StackedMNIST, load_mnist


def test_samples_stack_three_padded_digits_and_label_their_mode(mnist_root):
    data = create_dataset("stackedmnist", root=str(mnist_root))
    assert data.shape == (3, 32, 32) and data.num_classes == 0
    images, modes = data.sample_with_modes(64, torch.Generator().manual_seed(7))
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() == -1.0 and images.max() == 1.0
    # The same draw by hand: three independent indices per sample into the training split.
    digits, labels = load_mnist(str(mnist_root), train=True)
    assert digits.shape == (60000, 28, 28) and digits.dtype == torch.uint8
    index = torch.randint(60000, (64, 3), generator=torch.Generator().manual_seed(7))
    assert torch.equal(images[:, :, 2:30, 2:30], digits[index].float() / 127.5 - 1.0)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (images[:, :, border] == -1.0).all()  # zero pad of 2 px (Progressive GAN dataset tool)
    assert torch.equal(modes, labels[index[:, 0]] * 100 + labels[index[:, 1]] * 10 + labels[index[:, 2]])
    # The trainer's entry point: same images, no labels (unconditional).
    same, none = data.sample(64, torch.Generator().manual_seed(7))
    assert none is None and torch.equal(same, images)


def test_modes_of_many_samples_are_close_to_uniform(mnist_root):
    _, modes = StackedMNIST(str(mnist_root)).sample_with_modes(20000, torch.Generator().manual_seed(0))
    counts = torch.bincount(modes, minlength=1000)
    assert counts.shape == (1000,) and int((counts > 0).sum()) > 990  # 1000 * (1 - e^-20) expected
    assert counts.max() < 50  # 20 expected per mode


def test_low_resolution_is_a_bilinear_downsample(mnist_root):
    data = StackedMNIST(str(mnist_root), resolution=16)
    full = StackedMNIST(str(mnist_root))
    small, _ = data.sample(8, torch.Generator().manual_seed(3))
    big, _ = full.sample(8, torch.Generator().manual_seed(3))
    assert small.shape == (8, 3, 16, 16) and data.shape == (3, 16, 16)
    assert small.min() >= -1.0 and small.max() <= 1.0
    assert small.mean().item() == pytest.approx(big.mean().item(), abs=1e-5)  # resampling keeps the mean


def test_errors_name_the_field(mnist_root, tmp_path, monkeypatch):
    monkeypatch.delenv("R3BENCH_DATA", raising=False)
    with pytest.raises(ConfigError, match="root"):
        StackedMNIST()
    with pytest.raises(ConfigError, match="root.*no MNIST"):
        StackedMNIST(str(tmp_path))
    with pytest.raises(ConfigError, match="resolution"):
        StackedMNIST(str(mnist_root), resolution=64)


def test_save_samples_writes_a_grid(mnist_root, tmp_path):
    data = StackedMNIST(str(mnist_root))
    images, _ = data.sample(16, torch.Generator().manual_seed(0))
    data.save_samples(images * 1.5, tmp_path / "grid.png")  # out of range values are clamped
    with Image.open(tmp_path / "grid.png") as picture:
        assert picture.size == (4 * 33 + 1, 4 * 33 + 1) and picture.mode == "RGB"
