"""A plug-in package reaches every registry through a real `r3bench.plugins` entry point: a loss, a configuration, a data set of a new kind and a report table with a figure, one file each."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The plug-in package: one module per addition, no __init__.py (a namespace package), nothing of r3bench edited.
MODULES = {
    "loss.py": '''
        """Plug-in loss: least squares (LSGAN), a name YAML can give as `loss: demo_squares`."""
        from roadmap.losses import Objective, register_objective

        register_objective(Objective(
            "demo_squares", lambda real, fake: (real - 1).square() / 2 + (fake + 1).square() / 2,
            lambda real, fake: (fake - 1).square() / 2, generator_needs_real=False, f_prime_at_zero=1.0,
            description="least squares (entry-point plug-in)"))
        ''',
    "config.py": '''
        """Plug-in configuration: the toy MLP, trained with the plug-in loss unless the run names another."""
        from roadmap.registry import ModelPair, register_model
        from toy2d.models import toy_mlp


        @register_model
        def demo_mlp(*, hidden: int = 16, depth: int = 1) -> ModelPair:
            """Plug-in configuration: a small toy MLP with the least-squares loss and R1."""
            return toy_mlp(hidden=hidden, depth=depth, loss=dict(loss="demo_squares", penalties=["r1"], lazy_interval=1))
        ''',
    "data.py": '''
        """Plug-in data set of a new kind: three Gaussians on the unit circle."""
        import math

        from roadmap.registry import register_dataset, register_dataset_kind
        from toy2d.data import GaussianMixture

        register_dataset_kind("demo_triangle", images=False, description="three 2-D Gaussians: modes covered")


        @register_dataset("demo_ring3", kind="demo_triangle")
        def demo_ring3(*, std: float = 0.02) -> GaussianMixture:
            """Three Gaussians on the unit circle."""
            return GaussianMixture("demo_ring3", [(math.cos(2 * math.pi * k / 3), math.sin(2 * math.pi * k / 3)) for k in range(3)], std)
        ''',
    "table.py": '''
        """Plug-in report table with a figure: the runs that feed `demo`, on a data set of the plug-in's kind, their mean
        modes and their modes per seed."""
        import functools

        import pandas as pd

        from reports.figures import figure_for
        from reports.registry import register_table
        from reports.sections import Figure
        from reports.tables import Cell, Table, feeds_mask, kind_mask, metric_values


        def plot_modes(runs, ax=None):
            fig, ax = figure_for(ax, figsize=(3, 2))
            ax.bar(runs["seed"].astype(str), metric_values(runs, "modes"))
            return fig, ax


        @register_table("demo", order=35, name="demo.table")
        def demo_table(results):
            part = results.runs[feeds_mask(results.runs, "demo") & kind_mask(results.runs, "demo_triangle")]
            if not len(part):
                return []
            values = metric_values(part, "modes")
            header = ["Runs", "Mean modes"]
            row = [Cell(text=str(len(part))), Cell(text=f"{sum(values) / len(values):.1f}")]
            return [Table("demo", "A plug-in table", header, pd.DataFrame([row], columns=header)),
                    Figure("demo-modes", "Plug-in: modes per seed", functools.partial(plot_modes, part))]
        ''',
}
ENTRY_POINTS = "[r3bench.plugins]\n" + "".join(f"demo_{name[:-3]} = r3bench_demo.{name[:-3]}\n" for name in MODULES)


@pytest.fixture
def plugin_path(tmp_path):
    """A folder to put on sys.path holding the package and its `.dist-info` (what pip would install)."""
    site = tmp_path / "site"
    package = site / "r3bench_demo"
    package.mkdir(parents=True)
    for name, text in MODULES.items():
        (package / name).write_text(textwrap.dedent(text).lstrip())
    info = site / "r3bench_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: r3bench-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


def r3bench(site: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    """The command line in a fresh process that finds the plug-in only through its entry points."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    done = subprocess.run([sys.executable, "-m", "runners.cli", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_each_addition_is_one_file(plugin_path):
    assert sorted(p.name for p in (plugin_path / "r3bench_demo").iterdir()) == ["config.py", "data.py", "loss.py", "table.py"]
    assert ENTRY_POINTS.count(" = r3bench_demo.") == 4


def test_a_plugin_named_in_yaml_trains_in_a_worker_and_reaches_the_report(plugin_path, tmp_path):
    experiment = tmp_path / "demo.yaml"
    # `loss:` named in YAML: resolved in the parent before any registry lookup; the local executor's worker is a
    # fresh process that resolves it again from the run's config.
    experiment.write_text("feeds: demo\nbase: {model: demo_mlp, dataset: demo_ring3, loss: demo_squares, batch: 32, "
                          "duration_kimg: 0.064, tick_kimg: 0.032}\nseeds: [0]\n")
    results = tmp_path / "results"
    r3bench(plugin_path, tmp_path, "run", str(experiment), "--out", str(results), "--executor", "local")
    run = results / "demo" / "seed0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and 0 <= summary["metrics"]["modes"] <= 3
    assert "loss: demo_squares" in (run / "config.yaml").read_text()
    assert json.loads((run / "job.json").read_text())["cluster"] == "local"

    r3bench(plugin_path, tmp_path, "report", str(results), "--out", str(tmp_path / "report"))
    text = (tmp_path / "report" / "report.md").read_text()
    assert "### Table `demo`" in text and "## Unclaimed runs" not in text
    assert re.search(r"^\| 1 \| [0-3]\.0 \|$", text, re.MULTILINE)
    assert "### Plug-in: modes per seed" in text and (tmp_path / "report" / "figures" / "demo-modes.png").exists()
    assert '<img alt="Plug-in: modes per seed"' in (tmp_path / "report" / "report.html").read_text()

    listing = json.loads(r3bench(plugin_path, tmp_path, "list", "--json").stdout)
    assert "demo_mlp" in listing["configurations"]
    assert listing["losses"]["demo_squares"] == "least squares (entry-point plug-in)"
    assert listing["datasets"]["demo_ring3"] == "demo_triangle"


def test_a_plugin_loss_is_found_by_name_before_anything_else_loads_the_plugins(plugin_path, monkeypatch):
    """In-process: `get_objective` of a name only a plug-in registers loads the entry points itself."""
    from roadmap import losses, plugins, registry
    from roadmap.config import resolve

    monkeypatch.setattr(plugins, "_loaded", False)  # a fresh process: no entry point imported yet
    monkeypatch.syspath_prepend(str(plugin_path))
    try:
        assert resolve(dict(model="demo_mlp", dataset="demo_ring3", loss="demo_squares")).loss == "demo_squares"
        assert losses.get_objective("demo_squares").f_prime_at_zero == 1.0
        assert registry.dataset_kind("demo_ring3") == "demo_triangle" and not registry.is_image_dataset("demo_ring3")
    finally:  # leave the registries as other tests expect them
        losses._objectives.pop("demo_squares", None)
        registry._model_builders.pop("demo_mlp", None)
        registry._dataset_builders.pop("demo_ring3", None)
        registry._dataset_kinds.pop("demo_ring3", None)
        registry._kinds.pop("demo_triangle", None)
        from reports import registry as tables

        tables.unregister_table("demo.table")
        for name in [name for name in sys.modules if name.startswith("r3bench_demo")]:
            del sys.modules[name]
