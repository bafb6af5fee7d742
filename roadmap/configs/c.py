"""Table 2 row C ("+ R2 gradient penalty"): Config B's networks trained with RpGAN + R1 + R2."""
from roadmap.configs._builders import RPGAN_R1_R2, _stripped, row
from roadmap.registry import ModelPair, register_model


@register_model
@row(_stripped, preset="ffhq256", loss=RPGAN_R1_R2)
def C() -> ModelPair:
    """C = C1 + R2 (RpGAN + R1 + R2), Config B's networks."""
