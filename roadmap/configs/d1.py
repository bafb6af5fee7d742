"""Table 2 row D1 ("ResNet-ify G & D"): 1-3-1 bottleneck ResNet, compression 4, G with output skips."""
from roadmap.configs._builders import RESNET_OPTIONS, RPGAN_R1_R2, _resnet, check_overrides
from roadmap.registry import ModelPair, register_model


@register_model
def D1(preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """D1 ResNet-ified G & D (stem 3x, bottleneck 0.75x Config A) with G output skips; RpGAN + R1 + R2."""
    check_overrides("D1", overrides, RESNET_OPTIONS)
    defaults = dict(stem_ratio=3.0, hidden_ratio=0.75, group_size=None, output_skips=True, loss=RPGAN_R1_R2,
                    description=D1.__doc__.splitlines()[0])
    return _resnet(preset, width, precision, **dict(defaults, **overrides))
