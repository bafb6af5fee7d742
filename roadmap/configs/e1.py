"""Table 2 row E1 ("ResNeXt-ify G & D"): grouped 3x3 conv (group size 16), compression ratio 2."""
from roadmap.configs._builders import RESNET_OPTIONS, RPGAN_R1_R2, _resnet, check_overrides
from roadmap.networks.layers import GROUP_SIZE
from roadmap.registry import ModelPair, register_model


@register_model
def E1(preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """E1 ResNeXt-ified: grouped 3x3 (group size 16), stem 3x, bottleneck 1.5x Config A; RpGAN + R1 + R2."""
    check_overrides("E1", overrides, RESNET_OPTIONS)
    defaults = dict(stem_ratio=3.0, hidden_ratio=1.5, group_size=GROUP_SIZE, output_skips=False, loss=RPGAN_R1_R2,
                    description=E1.__doc__.splitlines()[0])
    return _resnet(preset, width, precision, **dict(defaults, **overrides))
