"""Tables from synthetic run folders: cells, intervals, Fail (k/n), footnotes, LaTeX structure."""
import json
import math
import re

import numpy as np
import pytest

from roadmap.losses import list_objectives

from reports import tables
from reports.collect import collect
from reports.stats import mean_ci, t_quantile
from reports.tables import Metric, Row, TableSpec, build_table, render_latex, render_markdown

T975 = {1: 12.706204736174696, 2: 4.302652729749464, 4: 2.7764451051977987, 9: 2.2621571627982053}  # tables


def ci(values):
    """Expected (mean, half-width) of the 95% t interval, by hand."""
    values = np.asarray(values, dtype=float)
    return values.mean(), T975[len(values) - 1] * values.std(ddof=1) / math.sqrt(len(values))


def md_rows(markdown: str) -> dict:
    """Markdown table -> {first cell: [cells]} (body rows only)."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")][2:]  # minus header, rule
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells
    return rows


def check_tabular(tex: str, columns: int) -> list:
    """Structural LaTeX check: one booktabs tabular with `columns` columns in every row; returns the rows."""
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", tex).group(1)
    assert len(spec) == columns
    body = tex[tex.index(r"\toprule"):tex.index(r"\bottomrule")]
    assert r"\midrule" in body and tex.index(r"\bottomrule") < tex.index(r"\end{tabular}")
    lines = [line for line in body.splitlines() if line.strip() not in (r"\toprule", r"\midrule", "")]
    for line in lines:
        assert line.endswith(r"\\"), line
        assert len(re.findall(r"(?<!\\)&", line)) == columns - 1, line
    without_math = re.sub(r"\$[^$]*\$", "", tex.replace(r"\$", ""))
    assert not re.search(r"(?<!\\)[_%#]", without_math), "unescaped LaTeX special character"
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    return lines


def test_t_quantile_matches_tables():
    for df, expected in T975.items():
        assert t_quantile(0.95, df) == pytest.approx(expected, rel=1e-9)
    assert t_quantile(0.95, 1000) == pytest.approx(1.9623390808264078, rel=1e-8)
    mean, half, n = mean_ci([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.302652729749464 * 1.0 / math.sqrt(3))
    assert mean_ci([5.0]) == (5.0, None, 1)


@pytest.fixture
def table1_results(make_run):
    modes, kl = [1000, 990, 995], [0.08, 0.10, 0.09]
    for seed in range(3):
        make_run("table1", f"rpgan-r1r2-s{seed}", seed=seed, metrics=dict(modes=modes[seed], kl=kl[seed]))
    for seed, (m, k) in enumerate([(700, 0.9), (690, 1.0)]):
        make_run("table1", f"gan-r1r2-s{seed}", seed=seed, loss="gan", metrics=dict(modes=m, kl=k))
    make_run("table1", "gan-r1r2-s2", seed=2, loss="gan", status="diverged", reason="grad explodes")
    for seed in range(3):
        make_run("table1", f"rpgan-r1-s{seed}", seed=seed, penalties=["r1"], status="diverged")
    real = make_run.root / "table1" / "real"
    real.mkdir()
    (real / "eval.json").write_text(json.dumps(dict(modes=1000, kl=0.0123456, n=26000)))
    return collect(make_run.root)


def test_table1_cells(table1_results):
    (table,) = tables.table1(table1_results.runs, table1_results.real)
    markdown = render_markdown(table)
    rows = md_rows(markdown)
    mean, half = ci([1000, 990, 995])
    kl_mean, kl_half = ci([0.08, 0.10, 0.09])
    # the two recognisable columns (quality gate) come last; these constructed runs predate the gate: "-"
    assert rows["RpGAN + R1 + R2"][:5] == ["RpGAN + R1 + R2", "1000", f"{mean:.1f} ± {half:.1f} (n=3)", "0.0781",
                                           f"{kl_mean:.4f} ± {kl_half:.4f} (n=3)"]
    assert [cell.split(" [")[0] for cell in rows["RpGAN + R1 + R2"][5:]] == ["-", "-"]
    assert rows["RpGAN + R1 + R2"][2] == "995.0 ± 12.4 (n=3)"
    gan_mean, gan_half = ci([700, 690])
    assert rows["GAN + R1 + R2"][2] == f"{gan_mean:.1f} ± {gan_half:.1f} (n=2), Fail (1/3)"
    assert rows["GAN + R1 + R2"][2] == "695.0 ± 63.5 (n=2), Fail (1/3)"
    assert rows["RpGAN + R1"][1:5] == ["Fail", "Fail (3/3)", "Fail", "Fail (3/3)"]
    letter = re.search(r"\[(\w+)\] not run", markdown).group(1)
    assert rows["GAN + R1"][2] == f"- [{letter}]" and rows["GAN + R1"][4] == f"- [{letter}]"
    assert "95% Student-t" in markdown
    ceiling = [r for k, r in rows.items() if k.startswith("Real Stacked MNIST")][0]
    assert ceiling[2] == "1000" and ceiling[4] == "0.0123" and "n=26000" in ceiling[0]
    lines = check_tabular(render_latex(table), 7)
    assert len(lines) == 1 + 5  # header + 4 loss rows + ceiling
    assert r"$995.0 \pm 12.4$ (n=3)" in render_latex(table)
    assert rf"-\textsuperscript{{{letter}}}" in render_latex(table)


def test_missing_cells_say_why(make_run):
    make_run("x", "running-0", status="running")
    make_run("x", "failed-0", loss="gan", status="failed", reason="RuntimeError: CUDA out of memory\ntraceback")
    make_run("x", "ok-0", penalties=["r1"], metrics=dict(modes=3.0, kl=0.5))
    make_run("x", "ok-1", penalties=["r1"], status="running")
    runs = collect(make_run.root).runs
    (table,) = tables.table1(runs)
    rows = md_rows(render_markdown(table))
    markdown = render_markdown(table)
    notes = dict(re.findall(r"^\[(\w+)\] (.*?)\s*$", markdown, flags=re.M))
    assert notes[rows["RpGAN + R1 + R2"][2].split("[")[1].rstrip("]")] == "running: no run has finished yet"
    assert notes[rows["GAN + R1 + R2"][2].split("[")[1].rstrip("]")] == "failed: RuntimeError: CUDA out of memory"
    assert notes[rows["GAN + R1"][2].split("[")[1].rstrip("]")] == "not run"
    single = rows["RpGAN + R1"][2]
    assert single.startswith("3.0 (n=1) [") and "±" not in single
    marks = single.split("[")[1].rstrip("]").split(",")
    assert {notes[m] for m in marks} == {"1 more run(s) still running, not counted", tables.SINGLE_SEED}


def test_gamma_sweep_splits_rows(make_run):
    for gamma in (0.1, 10.0):
        make_run("sweep", f"g{gamma}", penalties=["r1"], gamma=gamma, status="diverged")
    (table,) = tables.table1(collect(make_run.root).runs)
    rows = md_rows(render_markdown(table))
    assert rows["RpGAN + R1 (gamma=0.1)"][2] == "Fail (1/1)" and rows["RpGAN + R1 (gamma=10.0)"][2] == "Fail (1/1)"


def test_table2_params_and_feature_distance(make_run, monkeypatch):
    fids = [10.0, 11.0, 12.5]
    for seed, fid in enumerate(fids):
        make_run("roadmap", f"C-s{seed}", model="C", dataset="cifar10", seed=seed,
                 metrics=dict(fid=fid, fd_mnist_classifier=seed + 1.0))
    counts = {"C": (18_890_123, 23_996_000)}
    monkeypatch.setattr(tables, "parameter_counts", lambda name, preset="ffhq256": counts.get(name, "ConfigError: unknown configuration"))
    (table,) = tables.table2(collect(make_run.root).runs)
    markdown = render_markdown(table)
    row = [r for k, r in md_rows(markdown).items() if k.startswith("C: + R2")][0]
    mean, half = ci(fids)
    fd_mean, fd_half = ci([1.0, 2.0, 3.0])
    assert row[1:] == ["11.65", f"{mean:.3f} ± {half:.3f} (n=3)", f"{fd_mean:.3f} ± {fd_half:.3f} (n=3)",
                       "18.890M", "18.890M", "23.996M", "23.996M"]
    row_a = [r for k, r in md_rows(markdown).items() if k.startswith("A: StyleGAN2")][0]
    assert row_a[1] == "7.516" and row_a[2].startswith("- [") and row_a[5].startswith("- [")
    assert "configuration A not countable here" in markdown
    assert "fd_mnist_classifier: Fréchet distance in a non-Inception feature space" in markdown
    tex = render_latex(table)
    check_tabular(tex, 8)
    assert r"fd\_mnist\_classifier" in tex


def test_parameter_counts_from_registry():
    from roadmap.registry import list_models

    if "E" not in list_models():
        pytest.skip("configuration E not registered yet")
    g, d = tables.parameter_counts("E")
    assert g == pytest.approx(23_058_000, rel=1e-3) and d == pytest.approx(23_010_000, rel=1e-3)


def test_table3_literature_ours_and_ceiling(make_run):
    make_run("table3", "E-s0", model="E", metrics=dict(modes=1000, kl=0.0312))
    real = make_run.root / "table3" / "real"
    real.mkdir()
    (real / "eval.json").write_text(json.dumps(dict(modes=999, kl=0.02, n=26000)))
    results = collect(make_run.root)
    (table,) = tables.table3(results.runs, results.real)
    rows = md_rows(render_markdown(table))
    assert rows["DCGAN"][1:] == ["99", "", "3.40", "", "", ""]
    assert rows["Ours (Config E)"][1] == "1000" and rows["Ours (Config E)"][2] == "1000.0 (n=1) [a]"
    assert rows["Ours (Config E)"][4] == "0.0312 (n=1) [a]"
    assert tables.SINGLE_SEED in render_markdown(table)
    check_tabular(render_latex(table), 7)
    assert len(rows) == 10 + 1 + 1
    assert tables.table1(results.runs) == []  # Config E runs are not Table 1 runs


def test_toy_tables(make_run):
    hq = [0.9, 0.8, 0.85]
    for seed in range(3):
        make_run("toy", f"25g-rpgan-s{seed}", model="toy_mlp", dataset="25gaussians", seed=seed,
                 metrics=dict(modes=25 - seed, modes_pacgan=24, modes_total=25, hq_fraction=hq[seed], kl=0.1 * seed))
        make_run("toy", f"25g-rpgan-lazy-s{seed}", model="toy_mlp", dataset="25gaussians", seed=seed, lazy_interval=8,
                 status="diverged" if seed else "completed", metrics=dict(modes=5, modes_pacgan=2, hq_fraction=0.1, kl=2.0))
    make_run("toy", "circle-gan-s0", model="toy_mlp", dataset="circle", loss="gan",
             metrics=dict(support_distance=0.01234, coverage=0.98, kl=0.05))
    mixtures, curves = tables.toy_tables(collect(make_run.root).runs)
    rows = md_rows(render_markdown(mixtures))
    mean, half = ci(hq)
    assert rows["25gaussians, rpgan + r1+r2"][1:] == [
        f"{ci([25, 24, 23])[0]:.1f} ± {ci([25, 24, 23])[1]:.1f} (n=3)", "24.0 ± 0.0 (n=3)",
        f"{mean:.3f} ± {half:.3f} (n=3)", f"{0.1:.3f} ± {ci([0, 0.1, 0.2])[1]:.3f} (n=3)", "0/3"]
    lazy = rows["25gaussians, rpgan + r1+r2, lazy 8"]
    assert lazy[1].startswith("5.0 (n=1)") and lazy[1].endswith("Fail (2/3) [a]") and lazy[-1] == "2/3"
    circle = md_rows(render_markdown(curves))["circle, gan + r1+r2"][1:]
    assert circle[:2] + circle[3:] == ["0.0123 (n=1) [a]", "0.980 (n=1) [a]", "0.050 (n=1) [a]", "0/1"]
    assert circle[2].startswith("-")  # high-quality fraction: not reported by runs before it existed
    check_tabular(render_latex(mixtures), 6)
    check_tabular(render_latex(curves), 6)


def test_dirac_table():
    from toy2d.dirac import analyse

    (table,) = tables.dirac_table([dict(analyse(1.0), experiment="quick"), dict(analyse(0.0), experiment="quick")])
    markdown = render_markdown(table)
    rows = [line.strip("|").split(" | ") for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 2 * len(list_objectives()) * 4  # 2 gammas x losses x 4 penalty sets
    by_key = {(r[0].strip(), r[1], r[2]): r for r in rows}
    unpenalized = by_key[("0", "rpgan", "none")]
    assert unpenalized[4] == "+0.0000-0.5000i, +0.0000+0.5000i" and unpenalized[5].strip().startswith("no")
    both = by_key[("1", "rpgan", "r1+r2")]  # c = 2: -1 +- sqrt(1 - 1/4)
    assert both[4] == f"{-1 - math.sqrt(0.75):+.4f}+0.0000i, {-1 + math.sqrt(0.75):+.4f}+0.0000i"
    assert both[5].strip() == "yes" and both[3] == both[4]
    check_tabular(render_latex(table), 6)


def test_generic_spec_is_a_few_lines(make_run):
    """A new (e.g. negative-results) table: a spec over grouped rows, rendered like the others."""
    for seed, (precision, fid) in enumerate([("fp32", 5.0), ("fp32", 7.0), ("fp16", None)]):
        make_run("precision", f"{precision}-{seed}", model="E", precision=precision, seed=seed,
                 status="completed" if fid else "diverged", metrics=dict(fid=fid) if fid else {})
    runs = collect(make_run.root).runs
    spec = TableSpec("precision", "Mixed precision", tables.group_rows(runs, ("precision",)),
                     [Metric("fid", "FID", 2), Metric(tables.DIVERGED, "Diverged")], row_header="Precision")
    rows = md_rows(render_markdown(build_table(runs, spec)))
    assert rows["fp16"][1:] == ["Fail (1/1)", "1/1"]
    assert rows["fp32"][1:] == [f"6.00 ± {T975[1] * math.sqrt(2) / math.sqrt(2):.2f} (n=2)", "0/2"]
    literal = build_table(runs, TableSpec("t", "c", [Row("paper only", paper={"fid": "7"})], [Metric("fid", "FID", paper=True)]))
    assert md_rows(render_markdown(literal))["paper only"] == ["paper only", "7", ""]


def test_a_cell_pools_only_runs_that_differ_in_the_seed(make_run):
    """A grid over lr [2e-4, 100] must not share one row: the row splits by lr and says so."""
    for seed in range(2):
        make_run("sweep", f"lr-small-s{seed}", seed=seed, lr=2e-4, threads=seed + 1, metrics=dict(modes=500.0 + seed, kl=1.0))
    make_run("sweep", "lr-huge-s0", seed=0, lr=100, status="diverged", reason="non-finite loss or gradient")
    (table,) = tables.table1(collect(make_run.root).runs)
    rows = md_rows(render_markdown(table))
    assert rows["RpGAN + R1 + R2 (lr=0.0002)"][2] == f"{ci([500, 501])[0]:.1f} ± {ci([500, 501])[1]:.1f} (n=2)"  # threads pooled
    (huge,) = [label for label in rows if label.startswith("RpGAN + R1 + R2 (lr=100")]
    assert rows[huge][2].startswith("Fail (1/1)")
