"""Table 2 row E (R3GAN): inverted bottleneck, stem 1.5x and expanded 3x Config A (expansion 2, group size 16)."""
from roadmap.configs._builders import RPGAN_R1_R2, _resnet, row
from roadmap.registry import ModelPair, register_model


# E's default column is stackedmnist, the other rows' ffhq256: runs that name no preset (neither the
# run nor model_args) were built at these defaults, so a common default would move committed numbers.
@register_model
@row(_resnet, preset="stackedmnist", stem_ratio=1.5, hidden_ratio=3.0, group_size="preset", output_skips=False,
     loss=RPGAN_R1_R2)
def E() -> ModelPair:
    """E R3GAN: inverted bottleneck (stem 1.5x, grouped 3x3 at 3x Config A, Table 9 groups); RpGAN + R1 + R2."""
