"""Table 2 row C ("+ R2 gradient penalty"): Config B's networks trained with RpGAN + R1 + R2."""
from roadmap.configs._builders import B_OPTIONS, RPGAN_R1_R2, _stripped, check_overrides
from roadmap.registry import ModelPair, register_model


@register_model
def C(preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """C = C1 + R2 (RpGAN + R1 + R2), Config B's networks."""
    check_overrides("C", overrides, B_OPTIONS)
    defaults = dict(loss=RPGAN_R1_R2, description=C.__doc__.splitlines()[0])
    return _stripped(preset, width, precision, **dict(defaults, **overrides))
