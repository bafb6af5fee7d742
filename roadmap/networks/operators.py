"""The operator backends of the network layers (plain, or the fast path of cpu_ops.py on the CPU and CUDA), chosen once per network when it is placed on its device (issues 21, 22).

A layer that computes through a backend subclasses `OperatorLayer` and calls `self.operators.<op>`
in its `forward`; which backend that is, is decided by `set_operators` (called by
`ModelPair.place`, so when a pair is built and whenever it moves; `operators_for` names the
device's own), never per call:
- `PlainOperators`: F.conv2d/F.linear/activations with autograd's own backward, fp32 weights cast
  to the activation's dtype (the meta device of the memory estimate, devices the fast path is not
  checked on, and the reference of the equivalence tests and benchmarks: bitwise the code before
  the CPU speed-ups);
- `FastOperators`: cpu_ops.py's layers with a cheap double backward, depthwise resampling in
  channels_last, and the adversarial gradient folded into R1/R2's backward (`folds`); the CPU's
  and CUDA's. Device-agnostic math, and dtype-following like the plain ones: in a bf16/fp16 stage
  (CUDA; the CPU emulates the formats in fp32, layers.enter_precision) they compute in that format.
Which D steps may fold follows from the layers (`fold_obstacles`): every D parameter must belong to
a layer whose `folds()` is true, and no module may declare a `fold_exception` (a reason string:
the projection embedding, minibatch stddev, low-precision stages, layers of other kinds).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from roadmap.networks import cpu_ops


class PlainOperators:
    """torch's own operators (autograd's backward); a `capture` handed in is ignored (nothing folds)."""

    folds = False  # layers running these operators cannot fold D's adversarial gradient

    @staticmethod
    def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, groups: int = 1, capture=None):
        bias = None if bias is None else bias.to(x.dtype)
        return F.conv2d(x, weight.to(x.dtype), bias, stride=stride, padding=padding, groups=groups)

    @staticmethod
    def linear(x, weight, bias=None, capture=None):
        bias = None if bias is None else bias.to(x.dtype)
        return F.linear(x, weight.to(x.dtype), bias)

    @staticmethod
    def biased_activation(x, bias, function, slope: Optional[float], capture=None):
        """function(x + bias[channel]); `slope` is the leaky ReLU's when `function` is one (else None)."""
        return function(x + bias.to(x.dtype).view((1, -1) + (1,) * (x.ndim - 2)))

    @staticmethod
    def leaky_layer(x, weight, bias, slope: float, padding: int = 0, capture=None):
        """leaky_relu(layer(x; weight) + bias) for a conv (4-D weight) or linear layer, the bias inside the layer (torch's modules)."""
        layer = F.linear(x, weight, bias) if weight.ndim == 2 else F.conv2d(x, weight, bias, padding=padding)
        return F.leaky_relu(layer, slope)

    @staticmethod
    def leaky_relu(x, slope: float, capture=None):
        return F.leaky_relu(x, slope)

    @staticmethod
    def interpolate(x, scale: float):
        """Bilinear resampling by `scale` (torch's F.interpolate)."""
        return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)

    @staticmethod
    def upsample(x, kernel):
        """2x transposed conv with the 4x4 `kernel` [1, 1, 4, 4], as the official reference ops: N*C single-channel images."""
        n, c, h, w = x.shape
        return F.conv_transpose2d(x.reshape(n * c, 1, h, w), kernel, stride=2, padding=1).view(n, c, 2 * h, 2 * w)

    @staticmethod
    def downsample(x, kernel, capture=None):
        """Stride-2 conv with the 4x4 `kernel` [1, 1, 4, 4] over N*C single-channel images."""
        n, c, h, w = x.shape
        return F.conv2d(x.reshape(n * c, 1, h, w), kernel, stride=2, padding=1).view(n, c, h // 2, w // 2)


class FastOperators(PlainOperators):
    """cpu_ops.py's operators: channels_last, a cheap double backward, the adversarial gradient folded into it."""

    folds = True

    @staticmethod
    def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, groups: int = 1, capture=None):
        return cpu_ops.conv2d(x, weight, bias, stride=stride, padding=padding, groups=groups, capture=capture)

    @staticmethod
    def linear(x, weight, bias=None, capture=None):
        return cpu_ops.linear(x, weight, bias, capture=capture)

    @staticmethod
    def biased_activation(x, bias, function, slope: Optional[float], capture=None):
        """The leaky ReLU through cpu_ops.py; a smooth activation (slope None) through autograd, as PlainOperators."""
        if slope is None:
            return PlainOperators.biased_activation(x, bias, function, slope)
        return cpu_ops.biased_leaky_relu(x, bias, slope, capture=capture)

    @staticmethod
    def leaky_layer(x, weight, bias, slope: float, padding: int = 0, capture=None):
        """The bias moves into the activation, where the fold gives it its adversarial gradient."""
        layer = (cpu_ops.linear(x, weight, capture=capture) if weight.ndim == 2
                 else cpu_ops.conv2d(x, weight, padding=padding, capture=capture))
        return cpu_ops.biased_leaky_relu(layer, bias, slope, capture=capture)

    @staticmethod
    def leaky_relu(x, slope: float, capture=None):
        return cpu_ops.biased_leaky_relu(x, None, slope, capture=capture)

    @staticmethod
    def interpolate(x, scale: float):
        """channels_last in and out, as the fast operators around it (no layout copies)."""
        return PlainOperators.interpolate(x.contiguous(memory_format=torch.channels_last), scale)

    @staticmethod
    def upsample(x, kernel):
        """groups = channels: oneDNN's depthwise kernel, ~4x faster than N*C single-channel images."""
        c = x.shape[1]
        return F.conv_transpose2d(x, kernel.expand(c, 1, 4, 4), stride=2, padding=1, groups=c)

    @staticmethod
    def downsample(x, kernel, capture=None):
        """Depthwise, as upsample."""
        c = x.shape[1]
        return cpu_ops.conv2d(x, kernel.expand(c, 1, 4, 4), stride=2, padding=1, groups=c, capture=capture)


class OperatorLayer(nn.Module):
    """A module whose forward runs through `self.operators`, set by `set_operators` (plain until then).

    `capture` is what the D step hands to the layer for one D call (cpu_ops.Capture; None otherwise).
    `folded_parameters()` are the parameters whose adversarial gradient the layer folds when `folds()`;
    `fold_exception` says why the layer cannot fold (None: it can, on operators that fold).
    """

    operators = PlainOperators
    capture = None
    fold_exception: Optional[str] = None

    def folds(self) -> bool:
        return self.operators.folds and self.fold_exception is None

    def folded_parameters(self) -> list:
        return list(self.parameters(recurse=False))


# Device types whose layers run FastOperators. Their kernels are those autograd's own backward calls for the plain
# operators (aten convolution and convolution_backward, matmul, leaky_relu_backward, sums), composed
# differently, so wherever the plain path runs in a dtype (fp32, and a bf16/fp16 stage on CUDA; the CPU computes those
# stages in fp32, layers.enter_precision) the fast one does: nothing falls back per dtype. Elsewhere the plain
# operators, decided here once: the meta device only sizes tensors (roadmap/memory.py places its own operators),
# and on other accelerators (mps, xpu) nothing here has run, channels_last included.
FAST_DEVICE_TYPES = ("cpu", "cuda")


def operators_for(device) -> type:
    """The backend a layer on `device` runs: the fast operators on the CPU and CUDA, the plain ones elsewhere (meta)."""
    return FastOperators if torch.device(device).type in FAST_DEVICE_TYPES else PlainOperators


def set_operators(network: nn.Module, operators: type) -> nn.Module:
    """Let every OperatorLayer of `network` run `operators` (PlainOperators or FastOperators); returns `network`."""
    for module in network.modules():
        if isinstance(module, OperatorLayer):
            module.operators = operators
    return network


def hand_capture(network: nn.Module, capture) -> None:
    """Give `capture` (cpu_ops.Capture, or None to take it back) to every OperatorLayer of `network`."""
    for module in network.modules():
        if isinstance(module, OperatorLayer):
            module.capture = capture


def fold_obstacles(discriminator: nn.Module) -> list:
    """Why the D step cannot fold `discriminator`'s adversarial gradient: the declared `fold_exception`s of its
    modules and its parameters outside every layer that folds (by name); empty when it can fold."""
    reasons = [f"{name or type(discriminator).__name__}: {module.fold_exception}" for name, module in discriminator.named_modules()
               if getattr(module, "fold_exception", None) is not None]
    folded = {id(p) for module in discriminator.modules() if isinstance(module, OperatorLayer) and module.folds()
              for p in module.folded_parameters()}
    reasons += [f"{name}: not in a layer that folds" for name, p in discriminator.named_parameters() if id(p) not in folded]
    return reasons
