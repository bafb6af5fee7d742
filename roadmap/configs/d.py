"""Table 2 row D ("- output skips"): Config D1 without G's output skips."""
from roadmap.configs._builders import RESNET_OPTIONS, RPGAN_R1_R2, _resnet, check_overrides
from roadmap.registry import ModelPair, register_model


@register_model
def D(preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """D = D1 - output skips (stem 3x, bottleneck 0.75x Config A); RpGAN + R1 + R2."""
    check_overrides("D", overrides, RESNET_OPTIONS)
    defaults = dict(stem_ratio=3.0, hidden_ratio=0.75, group_size=None, output_skips=False, loss=RPGAN_R1_R2,
                    description=D.__doc__.splitlines()[0])
    return _resnet(preset, width, precision, **dict(defaults, **overrides))
