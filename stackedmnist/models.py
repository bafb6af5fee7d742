"""The Table 1 test bed: a small ResNet G and D without normalization layers (paper Section 2, Table 1).

The paper does not give this network's sizes; this one follows the principles of Config B-D
(Section 3): no normalization, leaky ReLU, bilinear resampling (no strided or transposed convs),
no tanh at G's output, identity residual paths with Fix-up initialization. Sizes are options:
`width` channels at every stage, `blocks` residual blocks per stage, `resolution` = the data's.
CPU scale (the `table1` cpu preset): width 32, 1 block, resolution 16 (about 0.1M parameters each).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from roadmap.errors import ConfigError, check_int
from roadmap.networks.operators import OperatorLayer
from roadmap.registry import ModelPair, register_model

LEAK = 0.2  # leaky ReLU slope (StyleGAN and R3GAN)


class ResidualBlock(OperatorLayer):
    """Layer order: Conv3x3 -> LeakyReLU(0.2) -> Conv3x3 (no bias), the result added to the input.

    torch's nn.Conv2d hold the parameters (their init and names); the arithmetic runs through the operators.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        hidden = self.operators.leaky_layer(x, self.conv1.weight, self.conv1.bias, LEAK, padding=1, capture=self.capture)
        return x + self.operators.conv2d(hidden, self.conv2.weight, padding=1, capture=self.capture)

    def folded_parameters(self) -> list:
        return [self.conv1.weight, self.conv1.bias, self.conv2.weight]


class Transition(OperatorLayer):
    """Layer order: bilinear resampling by `scale` (2 or 1/2) -> Conv1x1 when the width changes (else none)."""

    def __init__(self, in_channels: int, out_channels: int, scale: float):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x):
        x = self.operators.interpolate(x, self.scale)
        return x if self.conv is None else self.operators.conv2d(x, self.conv.weight, capture=self.capture)

    def folded_parameters(self) -> list:
        return [] if self.conv is None else [self.conv.weight]


def _stage_channels(width: int, resolution: int) -> list:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise ConfigError(f"model_args.resolution: expected a power of two >= 4, got {resolution!r}")
    check_int("model_args.width", width, 1)
    return [width] * (int(math.log2(resolution)) - 1)  # stages at 4, 8, ..., resolution


def _init_weights(network: nn.Module, blocks_total: int) -> None:
    """Kaiming init for the leaky ReLU, zero biases; Fix-up for residual blocks (no normalization):
    the last conv of each block starts at zero, the first is scaled by L^-1/2 (L blocks, 2 convs each)."""
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, a=LEAK, nonlinearity="leaky_relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for module in network.modules():
        if isinstance(module, ResidualBlock):
            module.conv1.weight.data.mul_(blocks_total ** -0.5)
            nn.init.zeros_(module.conv2.weight)


class SmallResNetGenerator(nn.Module):
    """z [N, latent_dim] -> images [N, 3, r, r]; no output nonlinearity.

    Layer order: Linear(z -> 4x4 maps) -> per stage (4, 8, ..., r): [Transition up, except at 4x4]
    -> `blocks` ResidualBlocks -> LeakyReLU -> Conv1x1 to RGB.
    """

    def __init__(self, latent_dim: int, width: int, blocks: int, resolution: int, channels: int = 3):
        super().__init__()
        widths = _stage_channels(width, resolution)
        self.basis = nn.Linear(latent_dim, widths[0] * 16)
        layers = []
        for index, stage_width in enumerate(widths):
            if index > 0:
                layers.append(Transition(widths[index - 1], stage_width, 2.0))
            layers += [ResidualBlock(stage_width) for _ in range(blocks)]
        self.stages = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(widths[-1], channels, 1)
        _init_weights(self, blocks * len(widths))

    def forward(self, z, labels=None):
        x = self.basis(z).view(len(z), -1, 4, 4)
        return self.to_rgb(F.leaky_relu(self.stages(x), LEAK))


class SmallResNetDiscriminator(OperatorLayer):
    """images [N, 3, r, r] -> logits [N].

    Layer order: Conv1x1 from RGB -> per stage (r, ..., 8, 4): `blocks` ResidualBlocks ->
    [Transition down, except at 4x4] -> LeakyReLU -> Linear(4x4 maps -> width) -> LeakyReLU -> Linear(-> 1).
    """

    def __init__(self, width: int, blocks: int, resolution: int, channels: int = 3):
        super().__init__()
        widths = _stage_channels(width, resolution)[::-1]  # high -> low resolution
        self.from_rgb = nn.Conv2d(channels, widths[0], 1)
        layers = []
        for index, stage_width in enumerate(widths):
            layers += [ResidualBlock(stage_width) for _ in range(blocks)]
            if index + 1 < len(widths):
                layers.append(Transition(stage_width, widths[index + 1], 0.5))
        self.stages = nn.Sequential(*layers)
        self.hidden = nn.Linear(widths[-1] * 16, widths[-1])
        self.out = nn.Linear(widths[-1], 1)
        _init_weights(self, blocks * len(widths))

    def forward(self, x, labels=None):
        operators, capture = self.operators, self.capture
        h = self.stages(operators.conv2d(x, self.from_rgb.weight, self.from_rgb.bias, capture=capture))
        h = operators.leaky_layer(operators.leaky_relu(h, LEAK, capture=capture).flatten(1), self.hidden.weight,
                                  self.hidden.bias, LEAK, capture=capture)
        return operators.linear(h, self.out.weight, self.out.bias, capture=capture).squeeze(1)

    def folded_parameters(self) -> list:
        return [*self.from_rgb.parameters(), *self.hidden.parameters(), *self.out.parameters()]


def _small_resnet(latent_dim: int, width: int, blocks: int, resolution: int, loss: dict) -> ModelPair:
    check_int("model_args.blocks", blocks, 1)
    check_int("model_args.latent_dim", latent_dim, 1)
    return ModelPair(
        generator=SmallResNetGenerator(latent_dim, width, blocks, resolution),
        discriminator=SmallResNetDiscriminator(width, blocks, resolution),
        latent_dim=latent_dim,
        loss_spec=loss,
        description=f"Table 1 small ResNet G/D, no normalization ({resolution}px, width {width}, {blocks} block(s)/stage)",
    )


RPGAN_R1_R2 = dict(loss="rpgan", penalties=["r1", "r2"], lazy_interval=1)  # read, never mutated (ModelPair copies it into a LossSpec)


@register_model
def small_resnet(*, latent_dim: int = 64, width: int = 128, blocks: int = 2, resolution: int = 32,
                 loss: dict = RPGAN_R1_R2) -> ModelPair:
    """Paper Table 1 test bed (Stacked MNIST): small ResNet G and D, RpGAN + R1 + R2 by default."""
    return _small_resnet(latent_dim, width, blocks, resolution, loss)
