"""The fast operators with a cheap double backward (roadmap/networks/cpu_ops.py) against autograd's own, in float64; in bf16 against float64."""
import pytest
import torch
import torch.nn.functional as F

from roadmap.networks import cpu_ops

# (in, out, kernel, groups, stride, padding, bias): 1x1, grouped 3x3, depthwise stride-2 (Downsample), head 4x4
GEOMETRIES = [(6, 10, 1, 1, 1, 0, False), (8, 12, 3, 4, 1, 1, True), (6, 6, 4, 6, 2, 1, False), (5, 5, 4, 5, 1, 0, False)]


def _tensors(cin, cout, kernel, groups, bias):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, cin, 8, 8, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(cout, cin // groups, kernel, kernel, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, generator=generator, requires_grad=True) if bias else None
    return x, w, b


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_convolution_first_and_second_derivatives(geometry):
    cin, cout, kernel, groups, stride, padding, bias = geometry
    x, w, b = _tensors(cin, cout, kernel, groups, bias)
    inputs = (x, w) if b is None else (x, w, b)

    def function(*args):
        return cpu_ops.conv2d(*args, stride=stride, padding=padding, groups=groups)

    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)
    torch.testing.assert_close(function(*inputs), F.conv2d(*inputs, stride=stride, padding=padding, groups=groups))


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_an_r1_style_weight_gradient_equals_autograds(geometry):
    """d/dw [mean(y^2) + ||d sum(sin y) / dx||^2]: the D step's shape (adversarial term + input-gradient penalty)."""
    cin, cout, kernel, groups, stride, padding, bias = geometry
    x, w, b = _tensors(cin, cout, kernel, groups, bias)

    def gradients(conv):
        y = conv(x, w, b, stride=stride, padding=padding, groups=groups)
        (gx,) = torch.autograd.grad(y.sin().sum(), x, create_graph=True)
        loss = gx.square().sum() + y.square().mean()
        return torch.autograd.grad(loss, [w] + ([b] if b is not None else []))

    for ours, reference in zip(gradients(cpu_ops.conv2d), gradients(F.conv2d)):
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)


def test_biased_leaky_relu_values_and_derivatives():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, generator=generator, requires_grad=True)
    reference = F.leaky_relu(x + b.view(1, -1, 1, 1), 0.2)
    torch.testing.assert_close(cpu_ops.biased_leaky_relu(x, b, 0.2), reference, rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda x, b: cpu_ops.biased_leaky_relu(x, b, 0.2), (x, b))
    # second derivatives: zero in x and b almost everywhere, linear in the incoming gradient
    assert torch.autograd.gradgradcheck(lambda x, b: cpu_ops.biased_leaky_relu(x, b, 0.2), (x, b))
    # the slope on the negative side, by hand: d/dx sum(y) = 1 where x + b > 0, else 0.2
    (gx,) = torch.autograd.grad(cpu_ops.biased_leaky_relu(x, b, 0.2).sum(), x)
    one, slope = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)
    expected = torch.where(x + b.view(1, -1, 1, 1) > 0, one, slope)
    assert torch.equal(gx, expected)


def test_third_derivatives_are_exact_too():
    """The pieces differentiate into each other, so a third derivative is right, not silently zero."""

    def third(conv):
        x, w, _ = _tensors(4, 4, 3, 2, False)
        y = conv(x, w, padding=1, groups=2)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.square().sum(), w, create_graph=True)
        return torch.autograd.grad(gw.square().sum(), [x, w])

    for ours, reference in zip(third(cpu_ops.conv2d), third(F.conv2d)):
        assert reference.abs().max() > 1
        torch.testing.assert_close(ours, reference, rtol=1e-11, atol=1e-9)


# A bf16 stage (CUDA's): gradcheck's finite differences mean nothing at bf16's 8 bits, so the bf16 path is compared
# with float64 on the same (bf16-representable) values. Its R1-style weight gradient chains about six bf16 roundings
# (y, sin/cos(y), the input gradient, its square's gradient, the double backward's convolution, the weight gradient),
# each within half an epsilon, and a weight gradient is a sum with cancellations: measured up to 1.3e-2 relative
# (in norm), on the plain path as on ours; 4 bf16 epsilons (2^-5, about 3.1e-2) bound both.
BF16_RELATIVE = 4 * torch.finfo(torch.bfloat16).eps


def _plain_conv2d(x, w, b=None, **geometry):
    """The plain path's convolution: fp32 parameters cast to the activation's dtype (operators.PlainOperators)."""
    return F.conv2d(x, w.to(x.dtype), None if b is None else b.to(x.dtype), **geometry)


def _relative(ours, reference) -> float:
    return ((ours.double() - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_bf16_convolution_follows_the_activation_and_its_r1_gradient_is_within_bf16_tolerance(geometry):
    """bf16 activations, fp32 parameters (cast to bf16 inside, as on the plain path): a bf16 output, fp32 parameter
    gradients, and the R1-style weight gradient of test_an_r1_style_weight_gradient_equals_autograds within bf16
    tolerance of float64."""
    cin, cout, kernel, groups, stride, padding, bias = geometry
    x64, w64, b64 = _tensors(cin, cout, kernel, groups, bias)
    x = x64.detach().bfloat16().requires_grad_(True)
    w = w64.detach().bfloat16().float().requires_grad_(True)  # fp32 parameters whose values bf16 holds exactly
    b = None if b64 is None else b64.detach().bfloat16().float().requires_grad_(True)

    def outputs(conv, x, w, b):
        y = conv(x, w, b, stride=stride, padding=padding, groups=groups)
        (gx,) = torch.autograd.grad(y.sin().sum(), x, create_graph=True)
        loss = gx.square().sum() + y.square().mean()
        return (y,) + torch.autograd.grad(loss, [w] + ([b] if b is not None else []))

    exact = outputs(F.conv2d, *(None if t is None else t.detach().double().requires_grad_(True) for t in (x, w, b)))
    for conv in (cpu_ops.conv2d, _plain_conv2d):
        y, *gradients = outputs(conv, x, w, b)
        assert y.dtype == torch.bfloat16 and all(g.dtype == torch.float32 for g in gradients)
        for ours, reference in zip([y] + gradients, exact):
            assert _relative(ours, reference) <= BF16_RELATIVE, conv.__name__


def test_bf16_linear_and_biased_leaky_relu_follow_the_activation():
    """fp32 weights and biases cast to a bf16 activation's dtype: bf16 outputs (a bias added in fp32 would promote
    the stage's activations to fp32), fp32 parameter gradients, first and second derivatives within bf16 tolerance
    of float64."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, generator=generator).bfloat16().requires_grad_(True)
    w = torch.randn(5, 6, generator=generator).bfloat16().float().requires_grad_(True)
    b = torch.randn(5, generator=generator).bfloat16().float().requires_grad_(True)

    def derivatives(layer, x, w, b):
        y = layer(x, w, b)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        return (y, gx) + torch.autograd.grad(gx.square().sum(), [w, b])

    ours = derivatives(lambda x, w, b: cpu_ops.biased_leaky_relu(cpu_ops.linear(x, w), b, 0.2), x, w, b)
    assert [t.dtype for t in ours] == [torch.bfloat16, torch.bfloat16, torch.float32, torch.float32]
    exact = derivatives(lambda x, w, b: F.leaky_relu(F.linear(x, w) + b, 0.2),
                        *(t.detach().double().requires_grad_(True) for t in (x, w, b)))
    for value, reference in zip(ours, exact):
        assert _relative(value, reference) <= BF16_RELATIVE
