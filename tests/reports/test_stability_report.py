"""The stability section on synthetic runs with known outcomes: rates, Wilson intervals, paired verdicts, the map figure."""
import json

import pandas as pd
import pytest

from reports import stability
from reports.build import build_report
from reports.collect import collect
from reports.stats import wilson_interval


def _runs(make_run, diverged_r1: int, diverged_r1r2: int, seeds: int = 8):
    for seed in range(seeds):
        for penalties, k in ((["r1"], diverged_r1), (["r1", "r2"], diverged_r1r2)):
            status = "diverged" if seed < k else "completed"
            run_dir = make_run("stability", f"{'+'.join(penalties)}-s{seed}", seed=seed, penalties=penalties, lr=2e-3,
                               gamma=1.0, feeds="stability", status=status, metrics=dict(modes=100.0, kl=3.0))
            summary = json.loads((run_dir / "summary.json").read_text())
            summary["stability"] = dict(peak_loss_G=float(seed + 1), spike=seed < k + 1, recovered=seed == k)
            (run_dir / "summary.json").write_text(json.dumps(summary))


def test_cell_rates_and_wilson_intervals(make_run):
    _runs(make_run, diverged_r1=7, diverged_r1r2=3)
    cells = stability.cell_statistics(collect(make_run.root).runs).set_index("penalties")
    assert (cells.loc["r1+r2", "diverged"], cells.loc["r1+r2", "n"]) == (3, 8)
    assert cells.loc["r1+r2", "rate_ci"] == pytest.approx(wilson_interval(3, 8))
    assert cells.loc["r1+r2", "rate_ci"][0] == pytest.approx(0.1368, abs=1e-3)  # Wilson, 3 of 8, 95%
    assert cells.loc["r1+r2", "median_peak_loss_G"] == 4.5  # peaks 1..8
    assert (cells.loc["r1+r2", "recovered"], cells.loc["r1+r2", "spiked"]) == (1, 4)


def test_paired_verdict_holds_only_when_significant(make_run, tmp_path):
    _runs(make_run, diverged_r1=7, diverged_r1r2=0)  # 7 seeds break with R1 only, none with R1+R2: p = 2 * 0.5**7
    lines = stability.verdicts(collect(make_run.root).runs)
    assert lines[0].startswith("**R1+R2 is more stable than R1 alone: reproduced**") and "p = 0.0156" in lines[0]
    low, high = wilson_interval(7, 8)  # 7 of 8 R1-only runs diverged; 0 of 8 with R1+R2: [0.00, 0.32]
    assert (f"R1 alone 7/8 = 0.88 [95% Wilson {low:.2f}, {high:.2f}], the other setting 0/8 = 0.00 [0.00, 0.32]. "
            "Runs broke at lr 0.002.") in lines[0]
    assert len(lines) == 1  # these runs do not vary the lazy interval: no line for it (not "not run")
    text = build_report(make_run.root, tmp_path / "report").read_text()
    assert "## Stability map" in text and "![Stability map](figures/stability-map.png)" in text
    assert (tmp_path / "report" / "figures" / "stability-map.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report" / "figures" / "stability-peak-loss.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Unclaimed runs" not in text


def test_no_difference_is_not_shown(make_run):
    _runs(make_run, diverged_r1=2, diverged_r1r2=1)
    assert stability.verdicts(collect(make_run.root).runs)[0].startswith("**R1+R2 is more stable than R1 alone: inconclusive**")


def test_stability_table_once_in_md_and_in_html(make_run, tmp_path):
    _runs(make_run, diverged_r1=7, diverged_r1r2=0)
    out = tmp_path / "report"
    text = build_report(make_run.root, out).read_text()
    assert "### Table `stability`" not in text  # its own section, not repeated under "Tables"
    assert text.count("Stability map: divergence rate per cell over seeds") == 1
    assert (out / "tables" / "stability.md").exists() and (out / "tables" / "stability.tex").exists()
    page = (out / "report.html").read_text()
    assert "<h2>Stability map" in page and "R1+R2 is more stable than R1 alone: reproduced" in page
    assert page.count('id="stability"') == 1


def test_stability_map_panels_name_the_network(make_run):
    import matplotlib.pyplot as plt

    _runs(make_run, diverged_r1=3, diverged_r1r2=0)
    fig, axes = stability.plot_stability_map(collect(make_run.root).runs)
    titles = [ax.get_title() for ax in axes.flat if ax.get_title()]
    assert titles == ["stackedmnist, small_resnet: rpgan + r1", "stackedmnist, small_resnet: rpgan + r1+r2"]
    assert [t.get_text() for t in axes.flat[0].texts] == ["0.38"]  # 3 of 8 diverged at the one lr x gamma cell
    plt.close(fig)


def test_peak_loss_comparison_finds_a_tenfold_blow_up_paired_by_seed(make_run):
    """R1-only peaks 10x the R1+R2 peaks on each of 8 seeds: every signed difference is +1 in log10, so the
    exact two-sided Wilcoxon p is 2 / 2**8 = 0.0078 and the median ratio is 10."""
    for seed in range(8):
        for penalties, peak in ((["r1"], 10.0 * (seed + 1)), (["r1", "r2"], float(seed + 1))):
            run_dir = make_run("stability", f"{'+'.join(penalties)}-s{seed}", seed=seed, penalties=penalties, lr=2e-3,
                               gamma=1.0, feeds="stability", status="completed", metrics=dict(modes=100.0, kl=3.0))
            summary = json.loads((run_dir / "summary.json").read_text())
            summary["stability"] = dict(peak_loss_G=peak, spike=False, recovered=None)
            (run_dir / "summary.json").write_text(json.dumps(summary))
    [(cell, result)] = stability.paired_peaks(collect(make_run.root).runs, "penalties", "r1", "r1+r2")
    assert result["n"] == 8 and result["median_log_ratio"] == pytest.approx(1.0)
    assert result["p_value"] == pytest.approx(2 / 2**8)
    line = stability.verdicts(collect(make_run.root).runs)[0]
    assert "R1 alone higher in 1 of 1 cells" in line and "x10 (p = 0.0078, n = 8)" in line and "lower in 0." in line


def test_learnt_counts_only_finished_runs_that_meet_their_data_sets_criterion(make_run, tmp_path):
    """Stacked MNIST's criterion (reports/claims.yaml): modes >= 990 and KL <= 0.1. Per seed at lr 2e-3: seed 0 meets
    it, seed 1 misses KL, seed 2 misses modes, seed 3 meets it but diverged; so 1 of 4 learnt. An unknown data set
    has no criterion: '-' and no learnt map."""
    outcomes = [(1000, 0.05, "completed"), (1000, 0.2, "completed"), (989, 0.05, "completed"), (1000, 0.05, "diverged")]
    for seed, (modes, kl, status) in enumerate(outcomes):
        make_run("stability", f"s{seed}", seed=seed, penalties=["r1"], lr=2e-3, feeds="stability", status=status,
                 metrics=dict(modes=float(modes), kl=kl))
        make_run("stability", f"x{seed}", seed=seed, dataset="unknown", lr=2e-3, feeds="stability", metrics=dict(modes=1000.0, kl=0.0))
    runs = collect(make_run.root).runs
    cells = stability.cell_statistics(runs).set_index("dataset")
    assert cells.loc["stackedmnist", "learnt"] == 1 and cells.loc["stackedmnist", "learnt_ci"] == pytest.approx(wilson_interval(1, 4))
    assert cells.loc["unknown", "learnt"] is None or pd.isna(cells.loc["unknown", "learnt"])
    table = stability.stability_table(runs).cells
    rows = dict(zip(table["Data, network"].map(lambda c: c.text), table["Learnt [95% Wilson]"].map(lambda c: c.text)))
    assert rows == {"stackedmnist, small_resnet": "1/4 [0.05, 0.70]", "unknown, small_resnet": "-"}
    assert stability.learnt_sentence(runs).endswith("over every data set and loss: r1: 1/4 at lr 0.002.")
    import matplotlib.pyplot as plt

    fig, axes = stability.plot_stability_map(runs, value="learnt_rate")
    assert [t.get_text() for t in axes.flat[0].texts] == ["0.25"] and axes.flat[0].get_title() == "stackedmnist, small_resnet: rpgan + r1"
    plt.close(fig)
    text = build_report(make_run.root, tmp_path / "report").read_text()
    assert "![Stability map: runs that learnt](figures/stability-map-learnt.png)" in text


def test_no_learnt_map_without_a_criterion(make_run, tmp_path):
    make_run("stability", "x0", dataset="unknown", penalties=["r1"], feeds="stability", metrics=dict(modes=1000.0, kl=0.0))
    runs = collect(make_run.root).runs
    assert not stability.table_has_learnt(runs) and stability.learnt_sentence(runs) == ""
    assert "stability-map-learnt" not in build_report(make_run.root, tmp_path / "report").read_text()
