"""Table 2 row C1 ("C + RpGAN loss"): Config B's networks trained with RpGAN + R1."""
from roadmap.configs._builders import RPGAN_R1, _stripped, row
from roadmap.registry import ModelPair, register_model


@register_model
@row(_stripped, preset="ffhq256", loss=RPGAN_R1)
def C1() -> ModelPair:
    """C1 = B + RpGAN loss (RpGAN + R1)."""
