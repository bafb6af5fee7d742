"""Table 2 row A: StyleGAN2 (StyleGAN2-ADA FFHQ-256 setting), non-saturating loss + lazy R1, path length reg."""
from roadmap.configs._builders import GAN_R1, _stylegan2, row
from roadmap.registry import ModelPair, register_model


@register_model
@row(_stylegan2, preset="ffhq256", loss=dict(GAN_R1, lazy_interval=16), path_length_interval=4)
def A() -> ModelPair:
    """A StyleGAN2: mapping net, style mod/demod, noise, toRGB skips, mbstd, equalized lr; GAN + lazy R1 (16) + path length (4)."""
