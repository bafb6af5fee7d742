"""Convolution, linear layer and biased leaky ReLU with a cheap double backward, for R1/R2 on the CPU and CUDA (paper Section 2.2; issue "Performance", issue 22).

R1 and R2 differentiate D's input gradient with respect to D's weights (a double backward).
PyTorch's generic double backward of a convolution computes the weight gradient by convolving
with batch and channels swapped, in a loop over groups, with transposed copies (on every device:
the official code pays it on the GPU too); and the double backward of `F.leaky_relu` sends a
tensor of zeros back into the forward graph (the second derivative of a piecewise-linear
function), so that autograd runs the forward graph's backward on zeros. Here each first-order
piece of the backward is its own autograd Function whose backward calls the layer's own
weight-gradient kernel (`aten.convolution_backward`: oneDNN on the CPU, cuDNN on CUDA, or a matmul
for a linear layer), and the activation's second derivative is dropped (None, not zeros). The
pieces are closed under differentiation (a convolution is bilinear in input and weight, the
activation's gradient linear in the incoming gradient), so every order of derivative is exact;
the suite takes two. Nothing here depends on the device: layers run these when their network is
placed on the CPU or CUDA (operators.FastOperators). 4-D inputs are taken to channels_last, where
oneDNN's 1x1 and grouped 3x3 kernels are fastest (and cuDNN's tensor-core kernels want their
bf16/fp16 inputs). Weights and biases follow the activation's dtype as on the plain path: fp32
parameters are cast to a low-precision stage's bf16/fp16 (a no-op in fp32), so the stage
computes in its format and autograd casts the parameter gradients back to fp32.

Folding the adversarial gradient into a backward that runs anyway (`Capture`). With R1
(or R2) on, the D step needs d/dw of [adv(logits) + penalty(input gradient)]. Autograd computes
the first term with a whole extra backward of D. But the input-gradient pass already holds, at
every layer, dy = d(sum of logits)/d(layer output), and samples are independent, so the
adversarial weight gradient of a layer is wgrad(c * x, dy), with c [N] the per-sample cotangent
d adv / d logit and x the layer's input, and its bias gradient is sum(c * dy). They are added where
the double backward computes wgrad(ggx, dy) anyway, as wgrad(ggx + c * x, dy): D's forward graph
is never traversed. On a side without a penalty, the input gradient is still measured (paper
Figure 1's signal) by a backward of sum(logits); the adversarial gradient is folded into that one
backward the same way. Valid only when every parameter of D sits in one of these layers on the
path from the image to the logit, so roadmap/step.py folds only a discriminator without
`operators.fold_obstacles`. The D step owns one `Capture` per D call and hands it to the layers
(`operators.hand_capture`), which pass it to these Functions as an argument: no global state.

Values are those of the plain operators up to floating-point reordering: tests/roadmap/test_cpu_ops.py
(gradcheck and gradgradcheck in float64, a third derivative; first and second derivatives in bf16
against float64) and tests/roadmap/test_step.py (a whole training iteration of every Table 2 row,
the small ResNet and the toy MLP, each folding branch, against the plain operators at 1e-5; a bf16
Config E iteration computed in bf16, as on CUDA, within bf16 tolerance).
"""
import torch
import torch.nn.functional as F

aten = torch.ops.aten
_DILATION, _OUTPUT_PADDING = [1, 1], [0, 0]


class Capture:
    """What the D step hands to the fast operators of one D call (operators.hand_capture); their autograd nodes keep it.

    `cotangent`: the per-sample cotangent c [N] of the adversarial loss with respect to this call's
    logits, which the step sets once the loss is known and before the backward that folds it (None:
    nothing folds). `inputs_only`: True while `input_gradient` runs, so that the operators skip the
    parameter gradients of a backward that wants the inputs' gradient only. A cotangent reaches fp32
    layers only: a low-precision stage declares a `fold_exception`, so its layers are never folded.
    """

    def __init__(self):
        self.cotangent = None
        self.inputs_only = False

    def input_gradient(self, logits: torch.Tensor, inputs: torch.Tensor, create_graph: bool) -> torch.Tensor:
        """d(sum of logits)/d(inputs), shape of inputs; per-sample because samples are independent.

        Without `inputs_only`, autograd.grad on the data inputs alone (R1/R2's integrand) would have each
        layer compute its weight gradient (one kernel per layer) and discard it: a custom Function cannot
        tell which of its inputs the engine wants.
        """
        self.inputs_only = True
        try:
            (gradient,) = torch.autograd.grad(logits.sum(), inputs, create_graph=create_graph, retain_graph=True)
        finally:
            self.inputs_only = False
        return gradient

    def _view(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.cotangent.view((-1,) + (1,) * (tensor.ndim - 1))

    def scaled(self, tensor: torch.Tensor) -> torch.Tensor:
        """c * tensor [N, ...], c broadcast over every dimension after the batch."""
        return self._view(tensor) * tensor

    def add_scaled(self, base: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
        """base + c * tensor, in one pass."""
        return torch.addcmul(base, self._view(tensor), tensor)

    def channel_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """sum over samples and positions of c * tensor [N, C, ...] -> [C] (a bias gradient)."""
        per_sample = tensor.sum(tuple(range(2, tensor.ndim))) if tensor.ndim > 2 else tensor
        return self.cotangent @ per_sample


def _folding(capture):
    """The capture if its cotangent is set (a backward that folds), else None."""
    return capture if capture is not None and capture.cotangent is not None else None


def _inputs_only(capture) -> bool:
    return capture is not None and capture.inputs_only


def _channel_sum(tensor: torch.Tensor) -> torch.Tensor:
    """sum over samples and positions -> [C] (a bias gradient)."""
    return tensor.sum([0] + list(range(2, tensor.ndim)))


def _layout(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous(memory_format=torch.channels_last) if tensor.ndim == 4 else tensor


def _forward(x, weight, bias, geometry):
    """conv(x, w) + b for 4-D weights, x w^T + b for 2-D ones (a linear layer, geometry None)."""
    if weight.ndim == 2:
        return F.linear(x, weight, bias)
    stride, padding, groups = geometry
    return aten.convolution(x, weight, bias, stride, padding, _DILATION, False, _OUTPUT_PADDING, groups)


def _backward(grad, x, weight, geometry, mask):
    """(grad input, grad weight, grad bias) of one layer, those in `mask` only (the others None)."""
    if weight.ndim == 2:
        return (grad @ weight if mask[0] else None, grad.t() @ x if mask[1] else None,
                grad.sum(0) if mask[2] else None)
    stride, padding, groups = geometry
    return aten.convolution_backward(grad, x, weight, None, stride, padding, _DILATION, False, _OUTPUT_PADDING,
                                     groups, mask)


class _Layer(torch.autograd.Function):
    """y = conv(x, w) + b or x w^T + b; when a graph is built, its backward is made of the two Functions below."""

    @staticmethod
    def forward(ctx, x, weight, bias, geometry, capture):
        ctx.save_for_backward(x, weight, bias)
        ctx.geometry, ctx.capture = geometry, capture
        return _forward(x, weight, bias, geometry)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad, fold = _layout(grad), _folding(ctx.capture)
        if not torch.is_grad_enabled():
            if fold is None:  # plain backward: one kernel call for everything needed
                return (*_backward(grad, x, weight, ctx.geometry, [needs_x, needs_weight, needs_bias]), None, None)
            # folded first-order pass: dx does not depend on x's values, so one call gives dx and wgrad(c * x, dy)
            grad_x, grad_weight, _ = _backward(grad, fold.scaled(x), weight, ctx.geometry, [needs_x, needs_weight, False])
            return grad_x, grad_weight, fold.channel_sum(grad) if needs_bias else None, None, None
        # x.detach(): dx does not depend on x's values, and an edge into the forward graph would make
        # autograd run the forward graph's backward (on zeros) in the double backward. The bias is an
        # input only to receive the folded adversarial gradient.
        grad_x = _InputGradient.apply(grad, x.detach(), weight, bias, ctx.geometry, ctx.capture) if needs_x else None
        skip = _inputs_only(ctx.capture)
        grad_weight = _WeightGradient.apply(grad, x, weight, ctx.geometry) if needs_weight and not skip else None
        grad_bias = _channel_sum(grad) if needs_bias and not skip else None
        return grad_x, grad_weight, grad_bias, None, None


class _InputGradient(torch.autograd.Function):
    """dx = layer_x^T(dy; w): linear in dy and in w (x gives the shape, and the folded term its input)."""

    @staticmethod
    def forward(ctx, grad, x, weight, bias, geometry, capture):
        ctx.save_for_backward(grad, x, weight)
        ctx.geometry, ctx.capture = geometry, capture
        return _backward(grad, x, weight, geometry, [True, False, False])[0]

    @staticmethod
    def backward(ctx, grad_grad_x):
        grad, x, weight = ctx.saved_tensors
        grad_grad_x, fold = _layout(grad_grad_x), _folding(ctx.capture)
        to_grad = to_weight = to_bias = None
        if ctx.needs_input_grad[0]:  # d/d(dy) <ggx, layer_x^T(dy; w)> = layer(ggx; w)
            to_grad = _Layer.apply(grad_grad_x, weight, None, ctx.geometry, None)
        if ctx.needs_input_grad[2]:  # d/dw: the weight gradient of layer(ggx; w) at output gradient dy
            source = grad_grad_x if fold is None else fold.add_scaled(grad_grad_x, x)  # + the adversarial term
            to_weight = _WeightGradient.apply(grad, source, weight, ctx.geometry)
        if ctx.needs_input_grad[3] and fold is not None:  # dx does not depend on b: only the adversarial term
            to_bias = fold.channel_sum(grad)
        return to_grad, None, to_weight, to_bias, None, None


class _WeightGradient(torch.autograd.Function):
    """dw = layer_w^T(dy; x): linear in dy and in x."""

    @staticmethod
    def forward(ctx, grad, x, weight, geometry):
        ctx.save_for_backward(grad, x, weight)
        ctx.geometry = geometry
        return _backward(grad, x, weight, geometry, [False, True, False])[1]

    @staticmethod
    def backward(ctx, grad_grad_weight):
        grad, x, weight = ctx.saved_tensors
        to_grad = to_x = None
        if ctx.needs_input_grad[0]:  # d/d(dy): layer(x; ggw)
            to_grad = _Layer.apply(x, grad_grad_weight, None, ctx.geometry, None)
        if ctx.needs_input_grad[1]:  # d/dx: the input gradient of layer(x; ggw) at output gradient dy
            to_x = _InputGradient.apply(grad, x, grad_grad_weight, None, ctx.geometry, None)
        return to_grad, to_x, None, None


def _like(parameter, x):
    """`parameter` in x's dtype (a low-precision stage's), or None; the same tensor when the dtypes agree."""
    return None if parameter is None else parameter.to(x.dtype)


def conv2d(x, weight, bias=None, stride: int = 1, padding: int = 0, groups: int = 1, capture=None) -> torch.Tensor:
    """F.conv2d (square stride and padding) in channels_last with the backward above; `capture`: the D step's, or None."""
    return _Layer.apply(_layout(x), _like(weight, x), _like(bias, x), ([stride, stride], [padding, padding], groups), capture)


def linear(x, weight, bias=None, capture=None) -> torch.Tensor:
    """F.linear for x [N, in] with the backward above; `capture`: the D step's, or None."""
    return _Layer.apply(x, _like(weight, x), _like(bias, x), None, capture)


class _BiasedLeakyReLU(torch.autograd.Function):
    """y = leaky_relu(x + b) (b may be None); saves y only (y > 0 exactly where x + b > 0, the slope being positive)."""

    @staticmethod
    def forward(ctx, x, bias, slope, capture):
        if bias is None:
            y = F.leaky_relu(x, slope)
        else:
            y = torch.add(x, bias.view((1, -1) + (1,) * (x.ndim - 2)))
            F.leaky_relu_(y, slope)
        ctx.save_for_backward(y, bias)
        ctx.slope, ctx.capture = slope, capture
        return y

    @staticmethod
    def backward(ctx, grad):
        y, bias = ctx.saved_tensors
        needs_bias = ctx.needs_input_grad[1]
        if not torch.is_grad_enabled():  # plain backward (folded: the bias gradient weighted by c)
            grad_x, fold = _leaky_gradient(grad, y, ctx.slope), _folding(ctx.capture)
            grad_bias = None if not needs_bias else _channel_sum(grad_x) if fold is None else fold.channel_sum(grad_x)
            return grad_x, grad_bias, None, None
        # y detached (see _Layer.backward); the bias is an input only to receive the folded adversarial gradient
        grad_x = _LeakyReLUGradient.apply(grad, y.detach(), bias, ctx.slope, ctx.capture)
        needs_bias = needs_bias and not _inputs_only(ctx.capture)
        return grad_x if ctx.needs_input_grad[0] else None, _channel_sum(grad_x) if needs_bias else None, None, None


class _LeakyReLUGradient(torch.autograd.Function):
    """dx = dy * (1 if y > 0 else slope): linear in dy; its derivative in y (and b) is zero almost everywhere."""

    @staticmethod
    def forward(ctx, grad, y, bias, slope, capture):
        grad_x = _leaky_gradient(grad, y, slope)
        ctx.save_for_backward(y, grad_x)
        ctx.slope, ctx.capture = slope, capture
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad):
        y, grad_x = ctx.saved_tensors
        fold = _folding(ctx.capture)
        to_bias = fold.channel_sum(grad_x) if ctx.needs_input_grad[2] and fold is not None else None  # the adversarial term
        return _LeakyReLUGradient.apply(grad_grad, y, None, ctx.slope, None), None, to_bias, None, None


def _leaky_gradient(grad, y, slope):
    """dy * (1 if y > 0 else slope), dy taken to y's memory format (mixed formats are slow elementwise)."""
    layout = torch.channels_last if y.ndim == 4 and y.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return aten.leaky_relu_backward(grad.contiguous(memory_format=layout), y, slope, False)


def biased_leaky_relu(x, bias, slope: float, capture=None) -> torch.Tensor:
    """leaky_relu(x + bias[channel], slope) with the backward above (bias None: no bias); `capture`: the D step's, or None."""
    return _BiasedLeakyReLU.apply(x, _like(bias, x), slope, capture)
