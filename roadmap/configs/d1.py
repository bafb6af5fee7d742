"""Table 2 row D1 ("ResNet-ify G & D"): 1-3-1 bottleneck ResNet, compression 4, G with output skips."""
from roadmap.configs._builders import RPGAN_R1_R2, _resnet, row
from roadmap.registry import ModelPair, register_model


@register_model
@row(_resnet, preset="ffhq256", stem_ratio=3.0, hidden_ratio=0.75, group_size=None, output_skips=True,
     loss=RPGAN_R1_R2)
def D1() -> ModelPair:
    """D1 ResNet-ified G & D (stem 3x, bottleneck 0.75x Config A) with G output skips; RpGAN + R1 + R2."""
