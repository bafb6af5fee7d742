"""The Table 1 small ResNet: parameter counts, shapes, Fix-up init, no normalization, bad options."""
import pytest
import torch
from torch import nn

from roadmap.errors import ConfigError
from roadmap.registry import create_model


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_cpu_size_parameter_counts_match_the_layer_list():
    pair = create_model("small_resnet", width=32, blocks=1, resolution=16)
    block = (32 * 32 * 9 + 32) + 32 * 32 * 9  # conv1 with bias, conv2 without
    # G: Linear(64 -> 32 x 4 x 4), 3 stages x 1 block (equal widths: no 1x1 transition convs), 1x1 to RGB.
    assert _count(pair.generator) == (64 * 512 + 512) + 3 * block + (32 * 3 + 3)
    # D: 1x1 from RGB, 3 blocks, Linear(512 -> 32), Linear(32 -> 1).
    assert _count(pair.discriminator) == (3 * 32 + 32) + 3 * block + (512 * 32 + 32) + (32 + 1)
    assert pair.latent_dim == 64
    assert pair.loss_spec.as_dict() == dict(loss="rpgan", penalties=["r1", "r2"], lazy_interval=1)


def test_shapes_and_fixup_start():
    torch.manual_seed(0)
    pair = create_model("small_resnet", width=16, blocks=2, resolution=32)
    z = torch.randn(5, pair.latent_dim)
    images = pair.generator(z)
    assert images.shape == (5, 3, 32, 32)
    assert pair.discriminator(images).shape == (5,)
    blocks = [m for m in pair.generator.modules() if type(m).__name__ == "ResidualBlock"]
    assert len(blocks) == 4 * 2  # stages 4, 8, 16, 32
    assert all(torch.count_nonzero(b.conv2.weight) == 0 for b in blocks)  # identity residual blocks at init
    kinds = {type(m) for m in pair.generator.modules()} | {type(m) for m in pair.discriminator.modules()}
    assert not any(issubclass(k, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.Tanh)) for k in kinds)
    images.sum().backward()
    assert all(p.grad is not None for p in pair.generator.parameters())


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match="resolution"):
        create_model("small_resnet", resolution=24)
    with pytest.raises(ConfigError, match="width"):
        create_model("small_resnet", width=0)
    with pytest.raises(ConfigError, match="blocks"):
        create_model("small_resnet", blocks=0)
