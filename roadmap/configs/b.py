"""Table 2 row B: stripped StyleGAN2 (ten tricks removed, principles a-e), non-saturating loss + R1."""
from roadmap.configs._builders import GAN_R1, _stripped, row
from roadmap.registry import ModelPair, register_model


@register_model
@row(_stripped, preset="ffhq256", loss=GAN_R1)
def B() -> ModelPair:
    """B stripped StyleGAN2: modulated 4x4 basis, VGG G with output skips, residual D; GAN + R1."""
