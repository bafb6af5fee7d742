"""Fold support follows from the layers (roadmap/networks/operators.py): no discriminator parameter escapes both the
layers that fold and a declared `fold_exception` (issue 21); the backend chosen for each device at placement (issue 22)."""
import pytest
import torch

from roadmap.configs import ROWS
from roadmap.networks.operators import FastOperators, OperatorLayer, PlainOperators, fold_obstacles, operators_for
from roadmap.registry import create_model, list_models

TINY = dict(preset="stackedmnist", width=0.03125, resolution=16)
CONDITIONAL = dict(TINY, preset="cifar10")  # a projection D (CIFAR-10 is conditional)
# Every registered discriminator at a tiny size, and the variants that change which layers it holds.
DISCRIMINATORS = [(row, TINY) for row in ROWS] + [
    ("B", CONDITIONAL), ("A", CONDITIONAL), ("A", dict(TINY, mbstd_group=0)),
    ("E", CONDITIONAL), ("E", dict(TINY, precision="bf16")), ("B", dict(TINY, precision="fp16")),
    ("E", dict(TINY, normalization="group")), ("E", dict(TINY, activation="gelu")), ("E", dict(TINY, precision_events=True)),
    ("small_resnet", dict(width=8, blocks=1, resolution=16)), ("toy_mlp", {}),
]


def _undeclared(discriminator) -> list:
    """Names of D's parameters in no layer that folds and under no module that declares a `fold_exception`."""
    folded = {id(p) for module in discriminator.modules() if isinstance(module, OperatorLayer) and module.folds()
              for p in module.folded_parameters()}
    declared = [name for name, module in discriminator.named_modules() if getattr(module, "fold_exception", None) is not None]
    return [name for name, p in discriminator.named_parameters()
            if id(p) not in folded and not any(name.startswith(prefix + "." if prefix else "") for prefix in declared)]


def test_every_registered_configuration_is_covered():
    assert {row for row, _ in DISCRIMINATORS} == set(list_models())


@pytest.mark.parametrize("row, model_args", DISCRIMINATORS)
def test_every_discriminator_parameter_folds_or_is_declared(row, model_args):
    """A new layer type with parameters in a D fails here until it folds (an OperatorLayer) or says why not."""
    discriminator = create_model(row, **model_args).place("cpu", FastOperators).discriminator
    assert _undeclared(discriminator) == []


@pytest.mark.parametrize("row, model_args, folds", [
    ("E", TINY, True), ("B", TINY, True), ("small_resnet", dict(width=8, blocks=1, resolution=16), True),
    ("E", CONDITIONAL, False), ("E", dict(TINY, precision="bf16"), False),
    ("E", dict(TINY, precision_events=True), False), ("E", dict(TINY, normalization="group"), False),
    ("A", TINY, False), ("A", dict(TINY, mbstd_group=0), False), ("toy_mlp", {}, False),
])
def test_the_fold_follows_from_the_layers_and_the_declarations(row, model_args, folds):
    discriminator = create_model(row, **model_args).place("cpu", FastOperators).discriminator
    assert (fold_obstacles(discriminator) == []) is folds


def test_an_undeclared_parameter_fails_the_coverage_and_stops_the_fold():
    """The check the parametrized test relies on: a plain torch layer slipped into a D that folds."""
    from torch import nn

    discriminator = create_model("E", **TINY).place("cpu", FastOperators).discriminator
    layers = discriminator.stages[0].layers
    layers.append(nn.Conv2d(1, 1, 1))
    name = f"stages.0.layers.{len(layers) - 1}"
    assert _undeclared(discriminator) == [f"{name}.weight", f"{name}.bias"]
    assert fold_obstacles(discriminator) == [f"{name}.weight: not in a layer that folds", f"{name}.bias: not in a layer that folds"]


def test_placement_on_cuda_chooses_the_fast_operators_in_fp32_and_bf16(monkeypatch):
    """The fast operators on the CPU and CUDA, whatever the stages' precision; the plain ones on the meta device and
    devices the suite does not check (mps, xpu), and wherever a caller asks for them. No GPU needed: the answer
    for a device, then a placement on "cuda" with the move itself left out."""
    assert operators_for("cpu") is operators_for(torch.device("cuda")) is operators_for("cuda:1") is FastOperators
    assert operators_for("meta") is operators_for("mps") is operators_for(torch.device("xpu")) is PlainOperators
    monkeypatch.setattr(torch.nn.Module, "to", lambda module, *args, **kwargs: module)
    for precision in ("fp32", "bf16"):
        pair = create_model("E", **dict(TINY, precision=precision)).place("cuda", PlainOperators)
        layers = [m for network in (pair.generator, pair.discriminator) for m in network.modules() if isinstance(m, OperatorLayer)]
        assert layers and all(m.operators is PlainOperators for m in layers)
        pair.place(torch.device("cuda"))
        assert all(m.operators is FastOperators for m in layers), precision
        # bf16 stages run the fast operators but do not fold (their declared fold_exception)
        assert (fold_obstacles(pair.discriminator) == []) is (precision == "fp32")
