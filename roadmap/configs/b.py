"""Table 2 row B: stripped StyleGAN2 (ten tricks removed, principles a-e), non-saturating loss + R1."""
from roadmap.configs._builders import B_OPTIONS, GAN_R1, _stripped, check_overrides
from roadmap.registry import ModelPair, register_model


@register_model
def B(preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """B stripped StyleGAN2: modulated 4x4 basis, VGG G with output skips, residual D; GAN + R1."""
    check_overrides("B", overrides, B_OPTIONS)
    defaults = dict(loss=GAN_R1, description=B.__doc__.splitlines()[0])
    return _stripped(preset, width, precision, **dict(defaults, **overrides))
