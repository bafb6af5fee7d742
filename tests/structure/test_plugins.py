"""A new configuration, loss and data set plug in from one module (here: this test), with no list in the package to edit."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from roadmap import losses, registry
from runners.cli import main


@pytest.fixture
def plugin():
    """Register a configuration, an objective and a toy data set through the public decorators; remove them afterwards."""
    from toy2d.data import GaussianMixture
    from toy2d.models import toy_mlp

    @registry.register_model
    def plugin_mlp(**overrides):
        """Plug-in configuration: the toy MLP with the least-squares loss."""
        return toy_mlp(**dict(dict(loss=dict(loss="least_squares", penalties=["r1"], lazy_interval=1)), **overrides))

    losses.register_objective(losses.Objective(
        "least_squares", lambda real, fake: (real - 1).square() / 2 + (fake + 1).square() / 2,
        lambda real, fake: (fake - 1).square() / 2, generator_needs_real=False, f_prime_at_zero=1.0,
        description="least squares (plug-in test)"))

    @registry.register_dataset("ring3", kind="toy_mixture")
    def ring3(std: float = 0.02):
        """Three Gaussians on the unit circle."""
        return GaussianMixture("ring3", [(math.cos(2 * math.pi * k / 3), math.sin(2 * math.pi * k / 3)) for k in range(3)], std)

    yield
    registry._model_builders.pop("plugin_mlp")
    registry._dataset_builders.pop("ring3")
    registry._dataset_kinds.pop("ring3")
    losses._objectives.pop("least_squares")


def test_plugin_shows_in_list(plugin, capsys):
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "plugin_mlp" in listing["configurations"]
    assert listing["losses"]["least_squares"] == "least squares (plug-in test)"
    assert listing["datasets"]["ring3"] == "toy_mixture"


def test_plugin_runs_in_a_dry_run_and_trains(plugin, tmp_path, capsys):
    experiment = tmp_path / "plugin.yaml"
    experiment.write_text("feeds: toy2d-ablation\nbase: {model: plugin_mlp, dataset: ring3, batch: 32, duration_kimg: 0.064, "
                          "tick_kimg: 0.032, model_args: {hidden: 16, depth: 1}}\nseeds: [0, 1]\n")
    assert main(["run", str(experiment), "--out", str(tmp_path / "results"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "model=plugin_mlp dataset=ring3 loss=least_squares" in out and out.count("[pending]") == 2
    assert main(["run", str(experiment), "--out", str(tmp_path / "results"), "--executor", "debug"]) == 0
    summary = json.loads((tmp_path / "results" / "plugin" / "seed0" / "summary.json").read_text())
    assert summary["status"] == "completed" and 0 <= summary["metrics"]["modes"] <= 3
    from reports.build import build_report

    report = build_report(tmp_path / "results", tmp_path / "report").read_text()
    row = [line for line in report.splitlines() if line.startswith("| ring3, least_squares + r1 ")]
    assert len(row) == 1 and row[0].endswith("| 0/2 |")  # the toy table, by the data set's kind; 0 of 2 seeds diverged


def test_plugin_loss_is_in_the_dirac_analysis(plugin):
    from toy2d.dirac import analyse

    rows = {(r["loss"], r["penalty"]): r for r in analyse(0.0)["results"]}
    assert rows[("least_squares", "none")]["closed_form"] == [[0.0, -1.0], [0.0, 1.0]]
