"""Table 2 rows as registered configurations: parameter counts, init, precision, bad input."""
import math

import pytest
import torch

from roadmap.bench import parameter_counts
from roadmap.configs import ROWS, describe_models
from roadmap.errors import ConfigError
from roadmap.networks.resnet import ResidualBlock
from roadmap.presets import NUM_CLASSES, PRESETS
from roadmap.registry import create_model

# Official R3GAN code instantiated with Table 9's settings (FACTS.md); exact where known.
E_COUNTS = {
    "stackedmnist": (20_732_160, 20_683_776),
    "cifar10": (20.782e6, 21.281e6),
    "ffhq64": (22.430e6, 22.381e6),
    "ffhq256": (23.058e6, 23.010e6),
    "imagenet32": (82.914e6, 86.549e6),
    "imagenet64": (103.570e6, 107.205e6),
}
TABLE_2 = {  # FFHQ-256, G and D parameters
    "A": (24.767e6, 24.001e6), "B": (18.890e6, 23.996e6), "C1": (18.890e6, 23.996e6), "C": (18.890e6, 23.996e6),
    "D1": (23.400e6, 23.282e6), "D": (23.378e6, 23.282e6), "E1": (23.188e6, 23.091e6), "E": (23.058e6, 23.010e6),
}


@pytest.mark.parametrize("preset", list(E_COUNTS))
def test_config_e_matches_official_counts(preset):
    counts = parameter_counts("E", preset)
    g, d = E_COUNTS[preset]
    # Rounded to the paper's 3 decimals of a million (exact integers for Stacked MNIST).
    assert abs(counts["G"] - g) <= 500 and abs(counts["D"] - d) <= 500, counts


@pytest.mark.parametrize("row", ROWS)
def test_table2_counts_at_ffhq256(row):
    counts = parameter_counts(row, "ffhq256")
    g, d = TABLE_2[row]
    assert abs(counts["G"] - g) <= 500 and abs(counts["D"] - d) <= 500, counts


def test_stylegan2_counts_are_exact():
    # StyleGAN2-ADA paper256 (fmaps 0.5, map 8, mbstd 8) instantiated: 24,767,458 / 24,001,089.
    assert parameter_counts("A", "ffhq256") == dict(G=24_767_458, D=24_001_089)
    # Config B: D = A's D minus the minibatch-stddev input channel of the 4x4 conv (512 * 9).
    assert parameter_counts("B", "ffhq256")["D"] == 24_001_089 - 512 * 9


def test_e_widths_and_groups_follow_table9():
    for preset, row in PRESETS.items():
        pair = create_model("E", preset=preset, width=0.0625)
        assert len(pair.generator.stages) == int(math.log2(row["resolution"])) - 1
        assert [round(1.5 * c) for c in row["stylegan2_channels"]] == row["channels"]
    with torch.device("meta"):
        pair = create_model("E", preset="ffhq256")
    blocks = [m for m in pair.discriminator.modules() if isinstance(m, ResidualBlock)]
    assert [b.conv2.groups for b in blocks[::2]] == PRESETS["ffhq256"]["groups"]
    assert [b.conv1.weight.shape[0] for b in blocks[::2]] == [2 * c for c in PRESETS["ffhq256"]["channels"]]


def test_width_multiplier_keeps_group_size():
    pair = create_model("E", preset="stackedmnist", width=0.0625)
    for block in (m for m in pair.generator.modules() if isinstance(m, ResidualBlock)):
        stem, hidden = block.conv1.weight.shape[1], block.conv1.weight.shape[0]
        assert stem == 48 and hidden == 96 and hidden // block.conv2.groups == 16
    pair = create_model("E1", preset="ffhq256", width=0.05)  # 1.5 * 64 * 0.05 = 4.8 -> one group of 16
    hiddens = [m.conv2.groups * 16 for m in pair.discriminator.modules() if isinstance(m, ResidualBlock)]
    assert min(hiddens) == 16 and all(h % 16 == 0 for h in hiddens)


def _width(preset):
    return 0.0625 if PRESETS[preset]["resolution"] <= 64 else 0.03125


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("row", ROWS)
def test_forward_backward_every_row_and_preset(row, preset):
    torch.manual_seed(0)
    pair = create_model(row, preset=preset, width=_width(preset))
    resolution = PRESETS[preset]["resolution"]
    labels = torch.tensor([1, 7]) if PRESETS[preset]["conditional"] else None
    images = pair.generator(torch.randn(2, pair.latent_dim), labels)
    assert images.shape == (2, 3, resolution, resolution) and images.dtype == torch.float32
    logits = pair.discriminator(images, labels)
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    logits.sum().backward()
    g_grads = [p.grad for p in pair.generator.parameters() if p.grad is not None]
    assert g_grads and all(torch.isfinite(g).all() for g in g_grads)
    assert all(p.grad is not None for p in pair.discriminator.parameters())


def test_losses_per_row():
    losses = {row: create_model(row, preset="stackedmnist", width=0.0625).loss_spec.as_dict() for row in ROWS}
    assert losses["A"] == dict(loss="gan", penalties=["r1"], lazy_interval=16)
    assert losses["B"] == dict(loss="gan", penalties=["r1"], lazy_interval=1)
    assert losses["C1"] == dict(loss="rpgan", penalties=["r1"], lazy_interval=1)
    for row in ("C", "D1", "D", "E1", "E"):
        assert losses[row] == dict(loss="rpgan", penalties=["r1", "r2"], lazy_interval=1)


def test_residual_blocks_are_identity_at_init():
    torch.manual_seed(0)
    for row in ("D1", "D", "E1", "E"):
        pair = create_model(row, preset="ffhq64", width=0.0625)
        blocks = [m for net in (pair.generator, pair.discriminator) for m in net.modules() if isinstance(m, ResidualBlock)]
        assert len(blocks) == 2 * 2 * 5
        for block in blocks:
            x = torch.randn(2, block.conv1.weight.shape[1], 8, 8)
            assert torch.equal(block(x), x)
            assert torch.count_nonzero(block.conv3.weight) == 0
            # Fix-up: He init with gain sqrt(2/(1+0.2^2)) scaled by L^-1/4, L = 10 blocks per network.
            fan_in = block.conv1.weight[0].numel()
            expected = math.sqrt(2 / 1.04) * 10 ** -0.25 / math.sqrt(fan_in)
            assert block.conv1.weight.std().item() == pytest.approx(expected, rel=0.15)


def test_output_variance_at_init_in_band():
    """Band: with D fed G's images (as in training), the activation RMS after every stage of G and D
    stays in [0.1, 1.5] at init (measured 0.16-1.15 at ffhq64: residual branches are zero, the 1x1
    transitions are He-scaled, bilinear resampling smooths a little); G's image std in [0.2, 1]."""
    torch.manual_seed(0)
    pair = create_model("E", preset="ffhq64", width=0.125)
    rms = []
    hooks = [stage.register_forward_hook(lambda m, i, o: rms.append(o.float().square().mean().sqrt().item()))
             for stage in list(pair.generator.stages) + list(pair.discriminator.stages)[:-1]]
    images = pair.generator(torch.randn(4, 64))
    pair.discriminator(images)
    for hook in hooks:
        hook.remove()
    assert len(rms) == 5 + 4
    assert all(0.1 <= value <= 1.5 for value in rms), rms
    assert 0.2 <= images.std().item() <= 1.0


def _representable(x, dtype):
    return torch.equal(x, x.to(dtype).float())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_low_precision_stages_only(precision):
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16)[precision]
    torch.manual_seed(0)
    pair = create_model("E", preset="ffhq64", width=0.0625, precision=precision)  # 5 stages, 4 low-precision
    seen = {}

    def record(name, slot):  # slot 0: input of the stage's first layer; slot 1: output of the stage
        def hook(module, inputs, output):
            seen.setdefault(name, [None, None])[slot] = _representable(output if slot else inputs[0], dtype)
        return hook

    hooks = []
    for prefix, stages in (("G", pair.generator.stages), ("D", pair.discriminator.stages)):  # G: low -> high res
        for index, stage in enumerate(stages):
            hooks.append(stage.layers[0].register_forward_hook(record(f"{prefix}{index}", 0)))
            hooks.append(stage.register_forward_hook(record(f"{prefix}{index}", 1)))
    images = pair.generator(torch.randn(2, 64))
    logits = pair.discriminator(images)
    assert images.dtype == logits.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in pair.generator.parameters())
    expected_g = {f"G{i}": i >= 1 for i in range(5)}  # the 4 highest-resolution G stages
    expected_d = {f"D{i}": i <= 3 for i in range(5)}
    for name, low in {**expected_g, **expected_d}.items():
        # A low-precision stage receives and emits values of the format; an fp32 stage emits fp32
        # values (its input may be the previous low-precision stage's output: D4 after D3).
        assert seen[name][1] == low and (seen[name][0] or not low), (name, seen[name])
    assert seen["G0"] == [False, False]
    fp32 = create_model("E", preset="ffhq64", width=0.0625)
    assert pair.generator.stages[0].dtype == torch.float32 and fp32.generator.stages[-1].dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: real bf16 casts")
def test_low_precision_on_cuda_casts_activations():
    pair = create_model("E", preset="stackedmnist", width=0.0625, precision="bf16")
    generator = pair.generator.cuda()
    dtypes = {}
    for index, stage in enumerate(generator.stages):
        stage.layers[1].register_forward_hook(lambda m, i, o, index=index: dtypes.__setitem__(index, o.dtype))
    images = generator(torch.randn(2, 64, device="cuda"))
    assert images.dtype == torch.float32
    assert dtypes == {0: torch.float32, 1: torch.bfloat16, 2: torch.bfloat16, 3: torch.bfloat16}


def test_conditional_presets_embed_labels():
    pair = create_model("E", preset="cifar10", width=0.0625)
    z = torch.randn(2, 64).repeat(2, 1)
    images = pair.generator(z, torch.tensor([0, 0, 3, 3]))
    assert not torch.allclose(images[0], images[2])
    logits = pair.discriminator(images[:1].repeat(10, 1, 1, 1), torch.arange(10))
    assert logits.std() > 0  # projection D: the label changes the logit
    assert pair.generator.embedding.weight.shape == (64, NUM_CLASSES["cifar10"])


def test_config_a_tricks():
    torch.manual_seed(0)
    pair = create_model("A", preset="stackedmnist", width=0.0625)
    generator = pair.generator
    z = torch.randn(4, 512)
    generator.eval()
    assert torch.equal(generator(z), generator(z))  # noise strengths start at 0 (StyleGAN2)
    strengths = [m.noise_strength for m in generator.modules() if hasattr(m, "noise_strength")]
    assert len(strengths) == 2 * 4 - 1  # one per 3x3 synthesis conv
    with torch.no_grad():
        strengths[-1].fill_(0.5)
    assert not torch.equal(generator(z), generator(z))  # noise injection
    with torch.no_grad():
        strengths[-1].zero_()
    reference = generator(z)
    generator.train()
    generator.mixing_probability = 1.0
    assert not torch.allclose(generator(z), reference)  # mixing regularization while training
    penalty = pair.generator_penalty(generator, z, None)
    assert penalty.shape == (2,) and torch.isfinite(penalty).all()
    assert generator.path_length_mean.item() > 0
    assert pair.generator_penalty_interval == 4
    # The penalty is (length - mean)^2 * 2: zero when every length equals the running mean.
    penalty.mean().backward()
    assert generator.mapping.layers[0].weight.grad is not None


def test_describe_models_lists_table2_rows():
    rows = describe_models()
    assert [name for name, _ in rows] == list(ROWS)
    assert all(description and "\n" not in description for _, description in rows)


@pytest.mark.parametrize("kwargs, field", [
    (dict(name="F"), "configuration"),
    (dict(name="E", preset="ffhq"), "preset"),
    (dict(name="E", width=0), "width"),
    (dict(name="E", width=-1.0), "width"),
    (dict(name="E", precision="fp8"), "precision"),
    (dict(name="E", blocks=0), "blocks"),
    (dict(name="D", widht=0.5), "widht"),
    (dict(name="B", preset="stackedmnist", conditional=True), "conditional"),
])
def test_bad_input_raises_config_error(kwargs, field):
    kwargs = dict(kwargs)
    name = kwargs.pop("name")
    with pytest.raises(ConfigError, match=field):
        create_model(name, **kwargs)
