"""toy_mlp's `activation` option (Appendix E activation ablation on the 2-D toys)."""
import pytest
import torch
from torch import nn

from roadmap.errors import ConfigError
from roadmap.networks.layers import smu
from roadmap.registry import create_model


def test_default_is_leaky_relu_and_unchanged():
    pair = create_model("toy_mlp")
    acts = [m for m in pair.generator.net if not isinstance(m, nn.Linear)]
    assert len(acts) == 3 and all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in acts)
    assert sum(p.numel() for p in pair.generator.parameters()) == 16 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 2 + 2
    assert sum(p.numel() for p in pair.discriminator.parameters()) == 2 * 128 + 128 + 2 * (128 * 128 + 128) + 128 + 1
    assert "leaky ReLU" in pair.description


@pytest.mark.parametrize("name, function", [("gelu", torch.nn.functional.gelu), ("silu", torch.nn.functional.silu), ("smu", smu)])
def test_activation_option(name, function):
    torch.manual_seed(0)
    pair = create_model("toy_mlp", activation=name, hidden=8, depth=1)
    x = torch.randn(5, 2)
    first = pair.discriminator.net[0]
    expected = pair.discriminator.net[2](function(first(x))).squeeze(1)
    assert torch.allclose(pair.discriminator(x), expected, atol=1e-6)


def test_unknown_activation_names_the_field():
    with pytest.raises(ConfigError, match="activation"):
        create_model("toy_mlp", activation="tanh")
