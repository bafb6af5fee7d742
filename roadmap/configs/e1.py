"""Table 2 row E1 ("ResNeXt-ify G & D"): grouped 3x3 conv (group size 16), compression ratio 2."""
from roadmap.configs._builders import RPGAN_R1_R2, _resnet, row
from roadmap.networks.layers import GROUP_SIZE
from roadmap.registry import ModelPair, register_model


@register_model
@row(_resnet, preset="ffhq256", stem_ratio=3.0, hidden_ratio=1.5, group_size=GROUP_SIZE, output_skips=False,
     loss=RPGAN_R1_R2)
def E1() -> ModelPair:
    """E1 ResNeXt-ified: grouped 3x3 (group size 16), stem 3x, bottleneck 1.5x Config A; RpGAN + R1 + R2."""
