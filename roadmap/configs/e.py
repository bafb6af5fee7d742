"""Table 2 row E (R3GAN): inverted bottleneck, stem 1.5x and expanded 3x Config A (expansion 2, group size 16)."""
from roadmap.configs._builders import RESNET_OPTIONS, RPGAN_R1_R2, _resnet, check_overrides
from roadmap.registry import ModelPair, register_model


# E's default column is stackedmnist, the other rows' ffhq256: runs that name no preset (neither the
# run nor model_args) were built at these defaults, so a common default would move committed numbers.
@register_model
def E(preset: str = "stackedmnist", width: float = 1.0, precision: str = "fp32", **overrides) -> ModelPair:
    """E R3GAN: inverted bottleneck (stem 1.5x, grouped 3x3 at 3x Config A, Table 9 groups); RpGAN + R1 + R2."""
    check_overrides("E", overrides, RESNET_OPTIONS)
    defaults = dict(stem_ratio=1.5, hidden_ratio=3.0, group_size="preset", output_skips=False, loss=RPGAN_R1_R2,
                    description=E.__doc__.splitlines()[0])
    return _resnet(preset, width, precision, **dict(defaults, **overrides))
