"""Table 2 row C1 ("C + RpGAN loss"): Config B's networks trained with RpGAN + R1."""
from roadmap.configs._builders import B_OPTIONS, RPGAN_R1, _stripped, check_overrides
from roadmap.registry import ModelPair, register_model


@register_model
def C1(preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """C1 = B + RpGAN loss (RpGAN + R1)."""
    check_overrides("C1", overrides, B_OPTIONS)
    defaults = dict(loss=RPGAN_R1, description=C1.__doc__.splitlines()[0])
    return _stripped(preset, width, precision, **dict(defaults, **overrides))
