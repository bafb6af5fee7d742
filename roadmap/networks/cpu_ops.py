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
"""
import torch

aten = torch.ops.aten
_DILATION, _OUTPUT_PADDING = [1, 1], [0, 0]


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
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.has_bias = (stride, padding, groups), bias is not None
        return _convolution(x, weight, bias, stride, padding, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        needs_bias = needs_bias and ctx.has_bias
        grad = grad.contiguous(memory_format=torch.channels_last)
        if not torch.is_grad_enabled():  # plain backward: one kernel call for everything needed
            return (*_backward(grad, x, weight, *ctx.geometry, [needs_x, needs_weight, needs_bias]), None, None, None)
        # x.detach(): dx does not depend on x's values, and an edge into the forward graph would make
        # autograd run the forward graph's backward (on zeros) during the double backward.
        grad_x = _InputGradient.apply(grad, x.detach(), weight, *ctx.geometry) if needs_x else None
        grad_weight = _WeightGradient.apply(grad, x, weight, *ctx.geometry) if needs_weight else None
        grad_bias = grad.sum((0, 2, 3)) if needs_bias else None
        return grad_x, grad_weight, grad_bias, None, None, None


class _InputGradient(torch.autograd.Function):
    """dx = conv_x^T(dy; w): linear in dy and in w (x only gives the shape)."""

    @staticmethod
    def forward(ctx, grad, x, weight, stride, padding, groups):
        ctx.save_for_backward(grad, x, weight)
        ctx.geometry = (stride, padding, groups)
        return _backward(grad, x, weight, stride, padding, groups, [True, False, False])[0]

    @staticmethod
    def backward(ctx, grad_grad_x):
        grad, x, weight = ctx.saved_tensors
        grad_grad_x = grad_grad_x.contiguous(memory_format=torch.channels_last)
        to_grad = to_weight = None
        if ctx.needs_input_grad[0]:  # d/d(dy) <ggx, conv_x^T(dy; w)> = conv(ggx; w)
            to_grad = _Convolution.apply(grad_grad_x, weight, None, *ctx.geometry)
        if ctx.needs_input_grad[2]:  # d/dw: the weight gradient of conv(ggx; w) at output gradient dy
            to_weight = _WeightGradient.apply(grad, grad_grad_x, weight, *ctx.geometry)
        return to_grad, None, to_weight, None, None, None


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
            to_x = _InputGradient.apply(grad, x, grad_grad_weight, *ctx.geometry)
        return to_grad, to_x, None, None, None, None


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """F.conv2d (square stride and padding) in channels_last with the double backward above."""
    x = x.contiguous(memory_format=torch.channels_last)
    return _Convolution.apply(x, weight, bias, [stride, stride], [padding, padding], groups)


class _BiasedLeakyReLU(torch.autograd.Function):
    """y = leaky_relu(x + b); saves y only (y > 0 exactly where x + b > 0, the slope being positive)."""

    @staticmethod
    def forward(ctx, x, bias, slope):
        y = torch.add(x, bias.view((1, -1) + (1,) * (x.ndim - 2)))
        torch.nn.functional.leaky_relu_(y, slope)
        ctx.save_for_backward(y)
        ctx.slope = slope
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        grad_x = _LeakyReLUGradient.apply(grad, y.detach(), ctx.slope)  # detached: see _Convolution.backward
        grad_bias = grad_x.sum([0] + list(range(2, y.ndim))) if ctx.needs_input_grad[1] else None
        return grad_x if ctx.needs_input_grad[0] else None, grad_bias, None


class _LeakyReLUGradient(torch.autograd.Function):
    """dx = dy * (1 if y > 0 else slope): linear in dy; its derivative in y is zero almost everywhere (None)."""

    @staticmethod
    def forward(ctx, grad, y, slope):
        ctx.save_for_backward(y)
        ctx.slope = slope
        return aten.leaky_relu_backward(grad.contiguous(memory_format=_format(y)), y, slope, False)

    @staticmethod
    def backward(ctx, grad_grad):
        (y,) = ctx.saved_tensors
        return _LeakyReLUGradient.apply(grad_grad, y, ctx.slope), None, None


def _format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def biased_leaky_relu(x, bias, slope: float) -> torch.Tensor:
    """leaky_relu(x + bias[channel], slope) with the backward above."""
    return _BiasedLeakyReLU.apply(x, bias, slope)
