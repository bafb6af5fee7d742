"""Table 2 row D ("- output skips"): Config D1 without G's output skips."""
from roadmap.configs._builders import RPGAN_R1_R2, _resnet, row
from roadmap.registry import ModelPair, register_model


@register_model
@row(_resnet, preset="ffhq256", stem_ratio=3.0, hidden_ratio=0.75, group_size=None, output_skips=False,
     loss=RPGAN_R1_R2)
def D() -> ModelPair:
    """D = D1 - output skips (stem 3x, bottleneck 0.75x Config A); RpGAN + R1 + R2."""
