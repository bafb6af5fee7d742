"""Convolution and biased leaky ReLU with a cheap double backward, for R1/R2 on the CPU (paper Section 2.2; issue "Performance").

R1 and R2 differentiate D's input gradient with respect to D's weights (a double backward).
PyTorch's generic double backward of a convolution computes the weight gradient by convolving
with batch and channels swapped, in a loop over groups, with transposed copies; and the double
backward of `F.leaky_relu` sends a tensor of zeros back into the forward graph (the second
derivative of a piecewise-linear function). Here each first-order piece of the backward is its
own autograd Function whose backward calls the convolution's own weight-gradient kernel
(`aten.convolution_backward`), and the activation's second derivative is dropped (None, not
zeros). The values are the same up to floating-point reordering (tests/networks/test_cpu_ops.py:
gradgradcheck in float64; tests/roadmap/test_step.py: a whole training iteration of every
Table 2 row against the plain operators at 1e-5).

The pieces are closed under differentiation (a convolution is bilinear in input and weight, the
activation's gradient linear in the incoming gradient), so every order of derivative is exact;
the suite takes two. Only the CPU path uses these (layers.py, `_fast`); inputs are taken to
channels_last there, where oneDNN's 1x1 and grouped 3x3 kernels are fastest.

Folding the adversarial gradient into the penalty's double backward (`AdversarialFold`): with R1
(or R2) on, the D step needs d/dw of [adv(logits) + penalty(input gradient)]. Autograd computes
the first term with a whole extra backward of D (input and weight gradients of every layer). But
the input-gradient pass already holds, at every layer, dy = d(sum of logits)/d(layer output), and
samples are independent, so the adversarial weight gradient is wgrad(c * x, dy) per layer, with c
the per-sample cotangent d adv / d logit and x the layer's input; the bias gradient is
sum(c * dy). Both are added where the double backward computes wgrad(ggx, dy) anyway, as
wgrad(ggx + c * x, dy): one weight-gradient kernel instead of three kernels, and D's forward graph
is never traversed. Only valid when every parameter of D sits in a layer built from these
operators on the path from the input to the logits (roadmap/step.py asks the discriminator,
`adversarial_fold_supported`).
"""
import contextlib

import torch

aten = torch.ops.aten
_DILATION, _OUTPUT_PADDING = [1, 1], [0, 0]


class AdversarialFold:
    """The per-sample cotangent c [N] of the adversarial loss with respect to one D call's logits.

    Layers run inside `folding(fold)` remember it; the D step sets `cotangent` after the loss is known
    and before the backward; the double backward then adds the adversarial term (module docstring).
    """

    def __init__(self):
        self.cotangent = None

    def scaled(self, tensor: torch.Tensor) -> torch.Tensor:
        """c * tensor, c broadcast over every dimension after the batch."""
        return self.cotangent.view((-1,) + (1,) * (tensor.ndim - 1)) * tensor


_active_fold = None  # the AdversarialFold of the D call being run, inside folding()


@contextlib.contextmanager
def folding(fold):
    """Inside the block, layers built from these operators attach `fold` (or nothing, for None) to their graph."""
    global _active_fold
    previous, _active_fold = _active_fold, fold
    try:
        yield fold
    finally:
        _active_fold = previous


def _backward(grad_output, x, weight, stride, padding, groups, mask):
    """(grad input, grad weight, grad bias) of one convolution, those in `mask` only."""
    return aten.convolution_backward(grad_output, x, weight, None, stride, padding, _DILATION, False, _OUTPUT_PADDING,
                                     groups, mask)


def _convolution(x, weight, bias, stride, padding, groups):
    return aten.convolution(x, weight, bias, stride, padding, _DILATION, False, _OUTPUT_PADDING, groups)


class _Convolution(torch.autograd.Function):
    """y = conv(x, w) + b; when a graph is built, its backward is made of the two Functions below."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, groups):
        ctx.save_for_backward(x, weight, bias)
        ctx.geometry, ctx.fold = (stride, padding, groups), _active_fold
        return _convolution(x, weight, bias, stride, padding, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad = grad.contiguous(memory_format=torch.channels_last)
        if not torch.is_grad_enabled():  # plain backward: one kernel call for everything needed
            return (*_backward(grad, x, weight, *ctx.geometry, [needs_x, needs_weight, needs_bias]), None, None, None)
        # x.detach(): dx does not depend on x's values, and an edge into the forward graph would make
        # autograd run the forward graph's backward (on zeros) during the double backward. The bias
        # is an input only to receive the folded adversarial gradient.
        grad_x = _InputGradient.apply(grad, x.detach(), weight, bias, *ctx.geometry, ctx.fold) if needs_x else None
        grad_weight = _WeightGradient.apply(grad, x, weight, *ctx.geometry) if needs_weight else None
        grad_bias = grad.sum((0, 2, 3)) if needs_bias else None
        return grad_x, grad_weight, grad_bias, None, None, None


class _InputGradient(torch.autograd.Function):
    """dx = conv_x^T(dy; w): linear in dy and in w (x gives the shape, and the folded term its input)."""

    @staticmethod
    def forward(ctx, grad, x, weight, bias, stride, padding, groups, fold):
        ctx.save_for_backward(grad, x, weight)
        ctx.geometry, ctx.fold = (stride, padding, groups), fold
        return _backward(grad, x, weight, stride, padding, groups, [True, False, False])[0]

    @staticmethod
    def backward(ctx, grad_grad_x):
        grad, x, weight = ctx.saved_tensors
        grad_grad_x = grad_grad_x.contiguous(memory_format=torch.channels_last)
        fold = ctx.fold if ctx.fold is not None and ctx.fold.cotangent is not None else None
        to_grad = to_weight = to_bias = None
        if ctx.needs_input_grad[0]:  # d/d(dy) <ggx, conv_x^T(dy; w)> = conv(ggx; w)
            to_grad = _Convolution.apply(grad_grad_x, weight, None, *ctx.geometry)
        if ctx.needs_input_grad[2]:  # d/dw: the weight gradient of conv(ggx; w) at output gradient dy
            source = grad_grad_x if fold is None else grad_grad_x + fold.scaled(x)  # + the adversarial term
            to_weight = _WeightGradient.apply(grad, source, weight, *ctx.geometry)
        if ctx.needs_input_grad[3] and fold is not None:  # dx does not depend on b: only the adversarial term
            to_bias = fold.scaled(grad).sum((0, 2, 3))
        return to_grad, None, to_weight, to_bias, None, None, None, None


class _WeightGradient(torch.autograd.Function):
    """dw = conv_w^T(dy; x): linear in dy and in x."""

    @staticmethod
    def forward(ctx, grad, x, weight, stride, padding, groups):
        ctx.save_for_backward(grad, x, weight)
        ctx.geometry = (stride, padding, groups)
        return _backward(grad, x, weight, stride, padding, groups, [False, True, False])[1]

    @staticmethod
    def backward(ctx, grad_grad_weight):
        grad, x, weight = ctx.saved_tensors
        to_grad = to_x = None
        if ctx.needs_input_grad[0]:  # d/d(dy): conv(x; ggw)
            to_grad = _Convolution.apply(x, grad_grad_weight, None, *ctx.geometry)
        if ctx.needs_input_grad[1]:  # d/dx: the input gradient of conv(x; ggw) at output gradient dy
            to_x = _InputGradient.apply(grad, x, grad_grad_weight, None, *ctx.geometry, None)
        return to_grad, to_x, None, None, None, None


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """F.conv2d (square stride and padding) in channels_last with the double backward above."""
    x = x.contiguous(memory_format=torch.channels_last)
    return _Convolution.apply(x, weight, bias, [stride, stride], [padding, padding], groups)


def linear(x, weight, bias=None) -> torch.Tensor:
    """F.linear for x [N, C] as a 1x1 convolution, so that it folds like the convolutions."""
    return conv2d(x[:, :, None, None], weight[:, :, None, None], bias).flatten(1)


class _BiasedLeakyReLU(torch.autograd.Function):
    """y = leaky_relu(x + b) (b may be None); saves y only (y > 0 exactly where x + b > 0, the slope being positive)."""

    @staticmethod
    def forward(ctx, x, bias, slope):
        if bias is None:
            y = torch.nn.functional.leaky_relu(x, slope)
        else:
            y = torch.add(x, bias.view((1, -1) + (1,) * (x.ndim - 2)))
            torch.nn.functional.leaky_relu_(y, slope)
        ctx.save_for_backward(y, bias)
        ctx.slope, ctx.fold = slope, _active_fold
        return y

    @staticmethod
    def backward(ctx, grad):
        y, bias = ctx.saved_tensors
        if not torch.is_grad_enabled():  # plain backward
            grad_x = aten.leaky_relu_backward(grad.contiguous(memory_format=_format(y)), y, ctx.slope, False)
            return grad_x, grad_x.sum([0] + list(range(2, y.ndim))) if ctx.needs_input_grad[1] else None, None
        # y detached (see _Convolution.backward); the bias only receives the folded adversarial gradient
        grad_x = _LeakyReLUGradient.apply(grad, y.detach(), bias, ctx.slope, ctx.fold)
        grad_bias = grad_x.sum([0] + list(range(2, y.ndim))) if ctx.needs_input_grad[1] else None
        return grad_x if ctx.needs_input_grad[0] else None, grad_bias, None


class _LeakyReLUGradient(torch.autograd.Function):
    """dx = dy * (1 if y > 0 else slope): linear in dy; its derivative in y (and b) is zero almost everywhere."""

    @staticmethod
    def forward(ctx, grad, y, bias, slope, fold):
        grad_x = aten.leaky_relu_backward(grad.contiguous(memory_format=_format(y)), y, slope, False)
        ctx.save_for_backward(y, grad_x)
        ctx.slope, ctx.fold = slope, fold
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad):
        y, grad_x = ctx.saved_tensors
        to_bias = None
        if ctx.needs_input_grad[2] and ctx.fold is not None and ctx.fold.cotangent is not None:
            to_bias = ctx.fold.scaled(grad_x).sum([0] + list(range(2, y.ndim)))  # the adversarial term
        return _LeakyReLUGradient.apply(grad_grad, y, None, ctx.slope, None), None, to_bias, None, None


def _format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def biased_leaky_relu(x, bias, slope: float) -> torch.Tensor:
    """leaky_relu(x + bias[channel], slope) with the backward above (bias None: no bias)."""
    return _BiasedLeakyReLU.apply(x, bias, slope)
