"""Collecting run folders and building the whole report (figures, report.md, report.html, CLI)."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from reports import figures  # noqa: E402
from reports.build import build_report  # noqa: E402
from reports.collect import collect  # noqa: E402
from roadmap.errors import ConfigError  # noqa: E402
from runners.cli import main  # noqa: E402


def _png(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, np.full((8, 8, 3), color, dtype=np.float32))


def test_collect_tolerates_torn_and_corrupt_files(make_run):
    run = make_run("nested/exp", "a", metrics=dict(modes=10, kl=0.5))
    with open(run / "metrics.jsonl", "a") as stream:
        stream.write('{"tick": 4, "kimg": 4.0, "loss_')  # killed writer
    make_run("nested/exp", "b", status="running", seed=1)
    corrupt = make_run("nested/exp", "c", seed=2)
    (corrupt / "summary.json").write_text("{not json")
    broken = make_run.root / "nested" / "exp" / "d"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: [unclosed")
    results = collect(make_run.root)
    runs = results.runs.set_index("run")
    assert list(runs.index) == ["a", "b", "c"]
    assert runs.loc["a", "status"] == "completed" and runs.loc["b", "status"] == "running"
    assert runs.loc["c", "status"] == "unreadable" and runs.loc["b", "kimg"] == 3.0
    assert set(runs["experiment"]) == {"nested/exp"}
    assert runs.loc["a", "metric.modes"] == 10 and runs.loc["a", "model_args.width"] == 0.125
    assert runs.loc["a", "penalties"] == "r1+r2" and runs.loc["a", "device"] == "cpu (x86_64, 2 cores)"
    assert runs.loc["a", "device_requested"] == "cpu"
    assert len(results.ticks[results.ticks["run"] == "a"]) == 3  # the torn fourth line is dropped
    problems = dict(results.problems)
    assert problems["nested/exp/c"].startswith("summary.json unreadable")
    assert problems["nested/exp/d"].startswith("config.yaml unreadable")


def _quick_results(make_run):
    """Table 1 runs (one diverging), toy runs with samples, a mode file and a dirac.json."""
    for seed in range(2):
        run = make_run("table1", f"rpgan-r1r2-s{seed}", seed=seed, metrics=dict(modes=900 + seed, kl=0.2))
        _png(run / "samples" / "final.png", (0.2, 0.4, 0.6))
    make_run("table1", "rpgan-r1-s0", penalties=["r1"], status="diverged", ticks=[
        dict(tick=1, kimg=1.0, loss_G=2.0, grad_norm_real=0.1, grad_norm_fake=5.0),
        dict(tick=2, kimg=2.0, loss_G=float("inf"), grad_norm_real=0.1, grad_norm_fake=2e4)])
    for dataset in ("25gaussians", "circle"):
        for loss in ("gan", "rpgan"):
            run = make_run("quick", f"{dataset}-{loss}", model="toy_mlp", dataset=dataset, loss=loss,
                           metrics=dict(modes=20, hq_fraction=0.9, kl=0.1, support_distance=0.01, coverage=0.9))
            _png(run / "samples" / "final.png", (0.9, 0.5, 0.1))
    from toy2d.dirac import analyse

    (make_run.root / "quick" / "dirac").mkdir()
    (make_run.root / "quick" / "dirac" / "dirac.json").write_text(json.dumps(analyse(1.0)))


def test_build_report_writes_tables_figures_and_index(make_run, tmp_path):
    _quick_results(make_run)
    out = tmp_path / "report"
    report = build_report(make_run.root, out, portrait_steps=20)
    assert report == out / "report.md"
    for name in ("table1", "toy-mixtures", "toy-curves", "dirac"):
        assert (out / "tables" / f"{name}.md").stat().st_size > 0 and (out / "tables" / f"{name}.tex").stat().st_size > 0
    for name in ("figure1", "grad-norms", "toy-samples", "stackedmnist-samples", "dirac-gamma1"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (out / "figures" / f"{name}.pdf").read_bytes()[:4] == b"%PDF", name
    text = report.read_text()
    assert "](figures/figure1.png)" in text and "](tables/table1.tex)" in text
    assert "7 run(s): 6 completed, 1 diverged." in text
    assert "hash-rpgan-r1r2-s0" in text and "abc1234" in text and "cpu (x86_64, 2 cores)" in text
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5 and "<table" in page and "Fail (1/1)" in page


def test_figure1_marks_divergence(make_run):
    _quick_results(make_run)
    results = collect(make_run.root)
    from reports.tables import table1_groups

    groups = table1_groups(results.runs[results.runs["experiment"] == "table1"])
    fig, ax = figures.plot_generator_loss(results.ticks, groups)
    assert ax.get_yscale() == "log"
    curves = [line for line in ax.lines if len(line.get_xdata())]
    assert len(curves) == 2  # one mean curve per variant (rpgan+r1+r2 over two seeds, rpgan+r1)
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_legend().get_lines()}
    assert styles["RpGAN + R1, small_resnet"] == "--" and styles["RpGAN + R1 + R2, small_resnet"] == "-"  # R1-only dashed
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "diverged (last finite tick)" in texts
    from matplotlib.collections import PathCollection

    marked = [tuple(c.get_offsets()[0]) for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    assert marked == [(1.0, 2.0)]  # last finite tick of the diverged run
    plt.close(fig)
    finished = [(label, runs[runs["status"] != "diverged"]) for label, runs in groups]
    fig, ax = figures.plot_generator_loss(results.ticks, [(label, runs) for label, runs in finished if len(runs)])
    assert "diverged (last finite tick)" not in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)


def test_empty_and_corrupt_results_give_readable_report(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    text = build_report(empty).read_text()
    assert "No run folders (folders holding config.yaml) were found." in text and "No table has data yet." in text
    assert (empty / "report" / "report.html").exists()

    corrupt = tmp_path / "corrupt" / "exp" / "run0"
    corrupt.mkdir(parents=True)
    (corrupt / "config.yaml").write_text("model: small_resnet\ndataset: stackedmnist\nloss: gan\npenalties: [r1]\nseed: 0\nfeeds: table1\n")
    (corrupt / "summary.json").write_text('{"status": "compl')
    text = build_report(tmp_path / "corrupt", tmp_path / "out").read_text()
    assert "## Problems" in text and "`exp/run0`: summary.json unreadable (JSONDecodeError" in text
    assert "1 run(s): 1 unreadable." in text
    assert "failed: summary.json unreadable" in text  # the cell's footnote


def test_cli(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "RESULTS_DIR" in capsys.readouterr().err
    (tmp_path / "results").mkdir()
    assert main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.md").exists()
    with pytest.raises(ConfigError):
        build_report(tmp_path / "missing")


def test_each_table_holds_exactly_the_runs_its_experiment_declares(make_run):
    """table1, table2 and table3 runs side by side (all Stacked MNIST, overlapping models and losses) plus an
    experiment that feeds nothing known: each table takes only its own, the unknown one is listed, never placed."""
    from reports.catalog import all_tables, unclaimed_runs
    from reports.tables import render_markdown

    for seed in range(3):
        make_run("table1", f"rpgan-r1r2-s{seed}", seed=seed, metrics=dict(modes=700.0 + seed, kl=2.0))
        make_run("table2", f"E-s{seed}", model="E", seed=seed, metrics=dict(modes=300.0 + seed, kl=4.0, fd_mnist_classifier=50.0))
        make_run("table3", f"E-s{seed}", model="E", seed=seed, metrics=dict(modes=900.0 + seed, kl=0.5))
        make_run("mystery", f"E-s{seed}", model="E", seed=seed, feeds="table9", metrics=dict(modes=1.0, kl=9.0))
    results = collect(make_run.root)
    tables = {t.name: render_markdown(t) for t in all_tables(results)}
    assert "| RpGAN + R1 + R2 | 1000 | 701.0" in tables["table1"]  # mean of 700, 701, 702
    assert "302.0" not in tables["table1"] and "901.0" not in tables["table1"]
    e_row = [line for line in tables["table2"].splitlines() if line.startswith("| E: + inverted bottleneck")][0]
    assert "301.0" in e_row and "50.000" in e_row and "901.0" not in tables["table2"]
    ours = [line for line in tables["table3"].splitlines() if line.startswith("| Ours")][0]
    assert "901.0" in ours and "301.0" not in tables["table3"]
    assert not any("9.0" in line and "1.0 ±" in line for text in tables.values() for line in text.splitlines())
    assert sorted(unclaimed_runs(results.runs)["run"]) == ["E-s0", "E-s1", "E-s2"]
    text = build_report(make_run.root).read_text()
    assert "## Unclaimed runs" in text and "| mystery | E-s0 | table9 | completed |" in text


def test_learning_curves_and_the_discrete_dirac_map_are_drawn_from_results(make_run, tmp_path):
    """Issue 25: the report shows the periodic scores that size a duration, and the discrete-time Dirac prediction."""
    import json

    for seed in range(2):
        ticks = [dict(tick=t, kimg=64.0 * t, loss_G=1.0, grad_norm_real=0.1, grad_norm_fake=0.1, score_hq_fraction=0.1 * t,
                      score_drift=0.5 / t) for t in range(1, 5)]
        make_run("curves", f"circle_seed{seed}", model="toy_mlp", dataset="circle", seed=seed, ticks=ticks,
                 metrics=dict(support_distance=0.01, coverage=1.0, hq_fraction=0.4, kl=0.01))
    (make_run.root / "dirac-discrete").mkdir()
    (make_run.root / "dirac-discrete" / "dirac-discrete.json").write_text(json.dumps(dict(
        lrs=[1e-3, 1e-2], gammas=[1.0, 10.0], steps=100, cycle_size={"1": [[0.1, 0.007], [0.2, 0.007]], "8": [[1.0, 0.03], [3.0, 0.03]]})))
    text = build_report(make_run.root, tmp_path / "out", portrait_steps=20).read_text()
    assert "![Learning curves (curves): periodic scores over kimg](figures/learning-curves-curves.png)" in text
    assert (tmp_path / "out" / "figures" / "dirac-discrete.png").exists() and "Discrete-time DiracRpGAN" in text


def test_a_rebuild_removes_tables_and_figures_whose_runs_are_gone(make_run, tmp_path):
    _quick_results(make_run)
    out = tmp_path / "report"
    build_report(make_run.root, out, portrait_steps=20)
    (out / "figures" / "stability-map.png").write_bytes(b"old")  # a figure of retired evidence
    (out / "tables" / "stability.md").write_text("old")
    (out / "figures" / "notes.txt").write_text("the user's")  # not a report output: kept
    import shutil

    shutil.rmtree(make_run.root / "quick")  # the toy runs retired
    build_report(make_run.root, out, portrait_steps=20)
    assert not (out / "figures" / "stability-map.png").exists() and not (out / "tables" / "stability.md").exists()
    assert not (out / "tables" / "toy-mixtures.md").exists() and not (out / "figures" / "toy-samples.png").exists()
    assert (out / "tables" / "table1.md").exists() and (out / "figures" / "figure1.png").exists()
    assert (out / "figures" / "notes.txt").exists()


def test_every_table_and_figure_states_the_commits_of_its_runs(make_run, tmp_path):
    """Issue 24: a table or figure of runs says which commits computed them, its own runs' commits only."""
    for seed, commit in enumerate(("abc1234", "def5678")):
        for loss in ("rpgan", "gan"):
            make_run("x", f"{loss}-s{seed}", loss=loss, seed=seed, git_commit=commit, metrics=dict(modes=990 + seed, kl=0.1))
    make_run("roadmap", "E-s0", model="E", git_commit="0ff1ce0", metrics=dict(modes=900, kl=0.3))
    report = build_report(make_run.root, tmp_path / "out", portrait_steps=20).read_text()
    table1 = (tmp_path / "out" / "tables" / "table1.md").read_text()
    table2 = (tmp_path / "out" / "tables" / "table2.md").read_text()
    assert "Runs from commits abc1234, def5678." in table1 and "0ff1ce0" not in table1
    assert "Runs from commit 0ff1ce0." in table2 and "abc1234" not in table2
    assert "*Figure 1: G loss over kimg. Runs from commits abc1234, def5678.*" in report
    assert "*D input-gradient norm, real vs fake. Runs from commits abc1234, def5678.*" in report


def test_your_runs_beside_the_reference_runs(make_run, tmp_path):
    """Issue 24: with results/reference beside your runs, each of your tables is followed by the reference's table of
    the same name, and the scoreboard judges yours with the reference's board beside it."""
    from tests.reports.conftest import write_run

    for loss in ("rpgan", "gan"):
        make_run("x", f"{loss}-s0", loss=loss, metrics=dict(modes=991, kl=0.2))
        write_run(make_run.root / "reference", "table1", f"{loss}-s0", loss=loss, git_commit="feed123",
                  metrics=dict(modes=1000, kl=0.07))
    make_run.root.joinpath("reference", "quick").mkdir()
    write_run(make_run.root / "reference", "quick", "toy-s0", model="toy_mlp", dataset="ring8", git_commit="feed123",
              metrics=dict(modes=8, hq_fraction=0.9))
    out = tmp_path / "out"
    text = build_report(make_run.root, out, portrait_steps=20).read_text()
    yours, theirs = (out / "tables" / "table1.md").read_text(), (out / "tables" / "reference-table1.md").read_text()
    assert "991.0" in yours and "1000.0" not in yours and "1000.0" in theirs and "991.0" not in theirs
    assert "Runs from commit abc1234." in yours and "Runs from commit feed123." in theirs
    section = text[text.index("### Table `table1`"):]
    assert section.index("**Stacked MNIST loss ablation") < section.index("- reference runs (results/reference)**")
    board = text[text.index("## Claims scoreboard"):text.index("## Tables")]
    assert "Your runs: " in board and "The reference runs (results/reference): " in board
    assert board.index("Your runs: ") < board.index("The reference runs") and (out / "tables" / "reference-scoreboard.md").is_file()
    assert "### Table `scoreboard`" not in text and "No runs of yours for this table yet." in text  # reference's toy table
