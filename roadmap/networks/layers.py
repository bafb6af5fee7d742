"""Shared layers of configurations B -> E: convolutions, biased leaky ReLU, bilinear resampling, precision (paper Section 3).

Mixed precision (Table 9, "the 4 highest-resolution stages run in a low-precision format"):
parameters always stay fp32. A stage marked low-precision receives its input through
`enter_precision`:
- CUDA: the activation is cast to bf16/fp16 and every layer casts its fp32 weights to the
  activation's dtype (`Convolution`, `BiasedActivation`, ...), so the stage computes in that format.
- CPU: low-precision convolutions are slow or missing, so the format is emulated: the activation
  is rounded through the format (x.to(dtype).to(float32)) at the stage's entry and exit; the
  arithmetic inside stays fp32.
Networks return fp32 images/logits in both cases.

What the CPU emulation models and what it does not (the `precision` experiment):
- modelled: the range and rounding of the format on every activation crossing a stage boundary
  (forward), and on every activation gradient crossing it (backward: autograd casts the gradient
  of `x.to(dtype).float()` through `dtype` too), so fp16 overflow to inf (|x| > 65504) and
  gradient underflow to 0 (|g| < 2^-25) at the boundaries happen as on a GPU;
- not modelled: rounding and overflow *inside* a stage (convolution accumulation, intermediate
  activations of the residual blocks, the 1x1/3x3 matmul outputs that overflow before the stage
  boundary), the input gradients of R1/R2 as computed in the format, and autocast's per-op choices.
Speed (issues "Performance", 22): the layers here compute through the operator backend that
networks/operators.py sets when their network is placed on its device. On the CPU and CUDA,
convolutions, linear layers and the biased leaky ReLU run through networks/cpu_ops.py (channels_last,
a cheap double backward for R1/R2, the adversarial gradient folded into it; in a low-precision stage
on CUDA, in the stage's format with the weights cast to it), and the bilinear resamplers as one
depthwise (groups = channels) convolution instead of a single-channel convolution over N*C images
(the layout of the official code's reference resamplers). The same values up to floating-point
reordering (tests/roadmap/test_step.py bounds a whole iteration at 1e-5 relative, and in bf16
computed as on CUDA within bf16 tolerance).
The plain operators (operators.PlainOperators, selectable on the CPU too) are bitwise the code
before these speed-ups (the official reference ops, F.conv2d, autograd's own double backward).
Ablation options of the ResNet G/D (Appendix E negative results): `activation` (ACTIVATIONS) and
`normalization` (NORMALIZATIONS); the defaults (leaky ReLU, none) are the paper's.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from roadmap.errors import ConfigError, unknown
from roadmap.networks.operators import OperatorLayer

LEAKY_SLOPE = 0.2
# Gain that keeps the second moment through a leaky ReLU(0.2) under He init: sqrt(2 / (1 + a^2)).
LEAKY_GAIN = math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2))
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
GROUP_SIZE = 16  # channels per group of the 3x3 grouped conv (Config E1/E)
ACTIVATIONS = ("lrelu", "gelu", "silu", "smu")  # Appendix E: GELU, Swish (= SiLU) and SMU instead of leaky ReLU
NORMALIZATIONS = ("none", "group")  # Appendix E: GroupNorm in G and D
SMU_ALPHA = 0.25  # smooth maximum unit (Biswas et al. 2022): slope of the leaky part
SMU_MU = 1.0  # SMU smoothing, fixed here (the SMU paper also allows a learnable mu; fixed keeps parameter counts)
GROUP_NORM_GROUPS = 32  # at most this many groups per GroupNorm (Wu & He's default), fewer when channels do not divide


def precision_dtype(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    return PRECISIONS[precision]


def enter_precision(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Activation entering (or leaving) a stage that runs in `dtype` (see the module docstring)."""
    if dtype == torch.float32:
        return x.float()
    if x.is_cuda or x.is_meta:  # meta: the memory estimate (roadmap/memory.py) sizes tensors as CUDA holds them
        return x.to(dtype)
    return x.to(dtype).float()


def check_choice(field: str, value, choices) -> str:
    if value not in choices:
        raise unknown(field, value, choices)
    return value


def smu(x: torch.Tensor, alpha: float = SMU_ALPHA, mu: float = SMU_MU) -> torch.Tensor:
    """Smooth maximum unit: ((1 + a) x + (1 - a) x erf(mu (1 - a) x)) / 2, a smooth max(x, a x)."""
    return ((1 + alpha) * x + (1 - alpha) * x * torch.erf(mu * (1 - alpha) * x)) / 2


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with the paper's slope 0.2 (principle e)."""
    return F.leaky_relu(x, LEAKY_SLOPE)


def activation_function(name: str):
    """The elementwise nonlinearity `name` (ACTIVATIONS) as a function of a tensor."""
    check_choice("activation", name, ACTIVATIONS)
    return dict(lrelu=leaky_relu, gelu=F.gelu, silu=F.silu, smu=smu)[name]


class Activation(nn.Module):
    """An elementwise nonlinearity chosen by name (ACTIVATIONS); no parameters."""

    def __init__(self, name: str = "lrelu"):
        super().__init__()
        self.name, self.function = name, activation_function(name)

    def forward(self, x):
        return self.function(x)

    def extra_repr(self):
        return self.name


def group_count(channels: int, most: int = GROUP_NORM_GROUPS) -> int:
    """The largest number of groups <= `most` that divides `channels`."""
    return max(g for g in range(1, min(most, channels) + 1) if channels % g == 0)


class GroupNorm(nn.GroupNorm):
    """torch GroupNorm (affine) whose fp32 weights follow the activation's dtype; `group_count` groups."""

    fold_exception = "GroupNorm runs on autograd's own backward, not on the operators that fold"

    def __init__(self, channels: int):
        super().__init__(group_count(channels), channels)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


def normalization_layer(name: str, channels: int) -> nn.Module:
    """GroupNorm for "group", nn.Identity() for "none" (the paper's principle c: no normalization)."""
    check_choice("normalization", name, NORMALIZATIONS)
    return GroupNorm(channels) if name == "group" else nn.Identity()


def check_width(width) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ConfigError(f"width: must be a number > 0, got {width!r}")
    return float(width)


def scale_channels(channels: int, width: float) -> int:
    """A channel count times the width multiplier, rounded, at least 1."""
    return max(1, round(channels * width))


def scale_grouped(channels: int, width: float, group_size: int = GROUP_SIZE) -> int:
    """Width of a grouped conv times the multiplier, rounded to a multiple of the group size (>= one group)."""
    return max(group_size, round(channels * width / group_size) * group_size)


def msr_init(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """He (MSR) init: N(0, gain^2 / fan_in), fan_in = in_channels/groups * kernel area."""
    fan_in = weight[0].numel()
    with torch.no_grad():
        return weight.normal_(0.0, gain / math.sqrt(fan_in))


class Convolution(OperatorLayer):
    """Conv2d with 'same' padding (or `padding`) whose fp32 weights follow the activation's dtype; bias optional."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, groups: int = 1, bias: bool = False,
                 gain: float = 1.0, padding=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.groups, self.padding = groups, (kernel_size - 1) // 2 if padding is None else padding
        msr_init(self.weight, gain)

    def forward(self, x):
        return self.operators.conv2d(x, self.weight, self.bias, padding=self.padding, groups=self.groups, capture=self.capture)


class Linear(OperatorLayer):
    """Fully connected layer on x [N, in], He init, dtype-following weights; bias optional."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        msr_init(self.weight, gain)

    def forward(self, x):
        return self.operators.linear(x, self.weight, self.bias, capture=self.capture)


class BiasedActivation(OperatorLayer):
    """x + bias (per channel), then the nonlinearity (leaky ReLU(0.2) by default). Layer order: bias -> activation."""

    def __init__(self, channels: int, activation: str = "lrelu"):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.activation = activation_function(activation)
        self.slope = LEAKY_SLOPE if activation == "lrelu" else None
        if self.slope is None:
            self.fold_exception = f"{activation} has a second derivative: it runs on autograd's own backward"

    def forward(self, x):
        return self.operators.biased_activation(x, self.bias, self.activation, self.slope, capture=self.capture)


def _bilinear_kernel() -> torch.Tensor:
    """The separable [1, 3, 3, 1] / 8 filter: bilinear interpolation for a factor-2 resampling."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


class Upsample(OperatorLayer):
    """Bilinear 2x upsampling (transposed depthwise conv with the [1,3,3,1] filter, times 4); no parameters."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", _bilinear_kernel().view(1, 1, 4, 4), persistent=False)

    def forward(self, x):
        return self.operators.upsample(x, 4 * self.kernel.to(x.dtype))


class Downsample(OperatorLayer):
    """Bilinear 2x downsampling (depthwise stride-2 conv with the [1,3,3,1] filter); no parameters."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", _bilinear_kernel().view(1, 1, 4, 4), persistent=False)

    def forward(self, x):
        return self.operators.downsample(x, self.kernel.to(x.dtype), capture=self.capture)
