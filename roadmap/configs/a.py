"""Table 2 row A: StyleGAN2 (StyleGAN2-ADA FFHQ-256 setting), non-saturating loss + lazy R1, path length reg."""
from roadmap.configs._builders import A_OPTIONS, GAN_R1, _stylegan2, check_overrides
from roadmap.registry import ModelPair, register_model


@register_model
def A(preset: str = "ffhq256", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """A StyleGAN2: mapping net, style mod/demod, noise, toRGB skips, mbstd, equalized lr; GAN + lazy R1 (16) + path length (4)."""
    check_overrides("A", overrides, A_OPTIONS)
    defaults = dict(loss=dict(GAN_R1, lazy_interval=16), path_length_interval=4, description=A.__doc__.splitlines()[0])
    return _stylegan2(preset, width, precision, **dict(defaults, **overrides))
