"""'bgc' augmentation (StyleGAN2-ADA Appendix B): identity at p = 0, exact blits, parameter laws, gradients."""
import dataclasses
import math

import pytest
import torch

from roadmap.augment import BGC, Strengths, augment, draw_color, draw_geometry

N = 20000


def _only(**on) -> Strengths:
    """Strengths with every transform off except those given."""
    names = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
             "brightness", "contrast", "lumaflip", "hue", "saturation")
    return dataclasses.replace(BGC, **{k: on.get(k, 0.0) for k in names})


def _images(n=4, c=3, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g) * 2 - 1


def test_p_zero_returns_input_unchanged():
    x = _images()
    y = augment(x, 0.0, torch.Generator().manual_seed(1))
    assert y is x
    assert torch.equal(y, x.clone())


def test_xflip_alone_at_p_one_flips_each_drawn_image_exactly():
    x = _images(n=64, size=16)
    y = augment(x, 1.0, torch.Generator().manual_seed(3), strengths=_only(xflip=1.0))
    _, par = draw_geometry(64, 1.0, 16, 16, torch.Generator().manual_seed(3), strengths=_only(xflip=1.0))
    flipped = par["xflip"].bool()
    assert 10 < flipped.sum() < 54  # the flip itself is a fair coin, as officially
    G, _ = draw_geometry(64, 1.0, 16, 16, torch.Generator().manual_seed(3), strengths=_only(xflip=1.0))
    assert torch.equal(G[:, 0, 0], 1 - 2 * par["xflip"])
    assert torch.equal(y[flipped], x[flipped].flip(-1))
    assert torch.equal(y[~flipped], x[~flipped])


def test_isotropic_scale_resamples_a_linear_ramp_exactly():
    # Bilinear sampling reproduces a linear function, so a ramp a * x zoomed by s reads
    # a * x / s at the center (x_in = x_out / s, well inside the image for these s).
    a, size = 0.1, 16
    x = (a * (torch.arange(size) - (size - 1) / 2)).expand(4, 3, size, size).contiguous()
    s = _only(scale=1.0)
    y = augment(x, 1.0, torch.Generator().manual_seed(2), s)
    _, par = draw_geometry(4, 1.0, size, size, torch.Generator().manual_seed(2), strengths=s)
    assert ((par["scale"] > 0.6) & (par["scale"] != 1)).all()
    expect = x / par["scale"].float()[:, None, None, None]
    assert torch.allclose(y[..., 6:10, 6:10], expect[..., 6:10, 6:10], atol=1e-6)


def test_blit_rotate90_and_integer_translation_are_exact():
    x = _images(n=32, size=16)
    s = _only(rotate90=1.0, xint=1.0)
    y = augment(x, 1.0, torch.Generator().manual_seed(5), s)
    _, par = draw_geometry(32, 1.0, 16, 16, torch.Generator().manual_seed(5), strengths=s)
    quarter, shift = par["rotate90"].long(), par["xint"].long()
    assert shift.abs().max() <= 2  # round(0.125 * 16)
    for i in range(32):
        # Reflection padding only shows within |shift| of the border; compare the interior bitwise.
        ref = torch.rot90(x[i], int(quarter[i]), dims=(-2, -1))
        ref = torch.roll(ref, shifts=(int(shift[i, 1]), int(shift[i, 0])), dims=(-2, -1))
        assert torch.equal(y[i, :, 2:-2, 2:-2], ref[:, 2:-2, 2:-2]), i


def test_geometry_parameter_laws():
    p = 0.6
    _, par = draw_geometry(N, p, 64, 32, torch.Generator().manual_seed(7))
    tol = 4 * math.sqrt(p * (1 - p) / N)  # 4 sigma on a frequency
    # x-flip: gated with p, then a fair coin.
    assert abs(par["xflip"].mean().item() - p / 2) < tol
    # Quarter turns: 0 unless gated, then uniform over {0, 1, 2, 3}.
    assert set(par["rotate90"].unique().tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert abs((par["rotate90"] == 3).double().mean().item() - p / 4) < tol
    # Integer translation: whole pixels within xint_max of the width / height.
    xint = par["xint"]
    assert torch.equal(xint, xint.round())
    assert xint[:, 0].abs().max() == 4 and xint[:, 1].abs().max() == 8  # 0.125 * 32, 0.125 * 64
    # Isotropic scale: lognormal, log2 std 0.2, on a fraction p of samples.
    on = par["scale"] != 1
    assert abs(on.double().mean().item() - p) < tol
    assert torch.log2(par["scale"][on]).std().item() == pytest.approx(0.2, rel=0.03)
    assert torch.log2(par["scale"][on]).mean().item() == pytest.approx(0.0, abs=0.01)
    assert torch.log2(par["aniso"][par["aniso"] != 1]).std().item() == pytest.approx(0.2, rel=0.03)
    # Rotations: each with 1 - sqrt(1 - p), so at least one with probability p; uniform in +-pi.
    pre, post = par["rotate_pre"] != 0, par["rotate_post"] != 0
    assert abs(pre.double().mean().item() - (1 - math.sqrt(1 - p))) < tol
    assert abs((pre | post).double().mean().item() - p) < tol
    assert par["rotate_pre"].abs().max() <= math.pi
    assert par["rotate_pre"][pre].std().item() == pytest.approx(math.pi / math.sqrt(3), rel=0.03)
    # Fractional translation: normal, std 0.125 of the size, in pixels.
    on = (par["xfrac"] != 0).any(-1)
    assert par["xfrac"][on, 0].std().item() == pytest.approx(0.125 * 32, rel=0.03)
    assert par["xfrac"][on, 1].std().item() == pytest.approx(0.125 * 64, rel=0.03)


def test_color_parameter_laws_and_matrix():
    p = 1.0
    C, par = draw_color(N, p, torch.Generator().manual_seed(11))
    assert par["brightness"].std().item() == pytest.approx(0.2, rel=0.03)
    assert torch.log2(par["contrast"]).std().item() == pytest.approx(0.5, rel=0.03)
    assert par["lumaflip"].mean().item() == pytest.approx(0.5, abs=0.02)
    assert par["hue"].abs().max() <= math.pi
    assert par["hue"].std().item() == pytest.approx(math.pi / math.sqrt(3), rel=0.03)
    assert torch.log2(par["saturation"]).std().item() == pytest.approx(1.0, rel=0.03)
    # On a gray pixel g the composed matrix gives (1 - 2 f) * c * (g + b) on every channel:
    # brightness adds b, contrast scales by c, the luma flip negates gray, hue and saturation
    # leave the gray axis fixed.
    g = 0.3
    gray = C @ torch.tensor([g, g, g, 1.0], dtype=torch.float64)
    sign = 1 - 2 * par["lumaflip"]
    expect = sign * par["contrast"] * (g + par["brightness"])
    assert torch.allclose(gray[:, :3], expect[:, None].expand(-1, 3), atol=1e-9)
    # Hue alone is a rotation about the gray axis: orthogonal, determinant 1, gray fixed.
    H, _ = draw_color(16, 1.0, torch.Generator().manual_seed(2), strengths=_only(hue=1.0))
    R = H[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(16, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(16, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(R @ torch.ones(3, dtype=torch.float64), torch.ones(16, 3, dtype=torch.float64), atol=1e-12)


def test_brightness_alone_adds_the_drawn_offset():
    x = _images(n=6, size=8)
    s = _only(brightness=1.0)
    y = augment(x, 1.0, torch.Generator().manual_seed(4), s)
    g = torch.Generator().manual_seed(4)
    draw_geometry(6, 1.0, 8, 8, g, strengths=s)  # same draw order as augment
    _, par = draw_color(6, 1.0, g, strengths=s)
    assert torch.allclose(y - x, par["brightness"].float()[:, None, None, None].expand_as(x), atol=1e-6)


def test_gradients_reach_the_generator_input():
    w = torch.randn(2, 3, 16, 16, requires_grad=True)
    fakes = torch.tanh(w)
    y = augment(fakes, 1.0, torch.Generator().manual_seed(0))
    (y ** 2).sum().backward()
    assert torch.isfinite(w.grad).all()
    assert w.grad.abs().sum() > 0


def test_shape_dtype_and_seed_reproducibility():
    x = _images(n=5, size=12)
    a = augment(x, 0.7, torch.Generator().manual_seed(9))
    b = augment(x, 0.7, torch.Generator().manual_seed(9))
    c = augment(x, 0.7, torch.Generator().manual_seed(10))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    x64 = x.double()
    assert augment(x64, 0.7, torch.Generator().manual_seed(9)).dtype == torch.float64


def test_luma_only_images_and_bad_input():
    x = _images(n=3, c=1, size=8)
    y = augment(x, 1.0, torch.Generator().manual_seed(0), _only(brightness=1.0, contrast=1.0))
    g = torch.Generator().manual_seed(0)
    draw_geometry(3, 1.0, 8, 8, g, strengths=_only(brightness=1.0, contrast=1.0))
    _, par = draw_color(3, 1.0, g, strengths=_only(brightness=1.0, contrast=1.0))
    expect = par["contrast"].float()[:, None, None, None] * (x + par["brightness"].float()[:, None, None, None])
    assert torch.allclose(y, expect, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        augment(torch.zeros(2, 4, 8, 8), 0.5)
    with pytest.raises(ValueError, match="p must be"):
        augment(torch.zeros(2, 3, 8, 8), 1.5)
