"""Convergence tables and the Dirac-prediction figure (issue 25) on constructed runs with known numbers."""
import math

import numpy as np

from reports.collect import collect
from reports.convergence import lazy_factor, plot_dirac_toys, stackedmnist_table, toy_table


def _toy(make_run, feeds, dataset, lr, lazy, drifts):
    for seed, drift in enumerate(drifts):
        make_run(feeds, f"{dataset}_lr{lr}_lazy{lazy}_seed{seed}", model="toy_mlp", dataset=dataset, penalties=["r1", "r2"], lr=lr,
                 gamma=1.0, lazy_interval=lazy, seed=seed, feeds=feeds, metrics=dict(coverage=1.0, hq_fraction=0.75 + 0.05 * seed),
                 stability=dict(final_drift=drift, final_grad_norm_real=0.002, final_grad_norm_fake=0.003, final_grad_ratio=1.5))


def test_toy_table_rows_are_cells_over_seeds_of_both_experiments(make_run):
    _toy(make_run, "lazy-reg-toys", "circle", 2e-4, 1, [0.01, 0.02, 0.03])
    _toy(make_run, "dirac-toys", "circle", 8e-4, 8, [0.1, 0.3])
    table = toy_table(collect(make_run.root).runs)
    cells = {row.iloc[0].text: row for _, row in table.cells.iterrows()}
    assert list(cells) == ["circle, lr 0.0002, gamma 1, lazy 1", "circle, lr 0.0008, gamma 1, lazy 8"]
    drift = cells["circle, lr 0.0002, gamma 1, lazy 1"]["Final drift"]
    # mean 0.02, sd 0.01, n 3: half-width t_.975,2 x 0.01 / sqrt 3 = 0.02484
    assert abs(drift.mean - 0.02) < 1e-12 and abs(drift.half_width - 4.3027 * 0.01 / math.sqrt(3)) < 1e-4 and drift.n == 3
    assert abs(cells["circle, lr 0.0008, gamma 1, lazy 8"]["High-quality fraction"].mean - 0.775) < 1e-12
    assert cells["circle, lr 0.0008, gamma 1, lazy 8"]["Fake / real"].mean == 1.5


def test_stackedmnist_table_puts_lazy_runs_beside_table1s_every_step_twins(make_run):
    for seed in range(2):
        make_run("table1", f"rpgan_r1+r2_seed{seed}", seed=seed, feeds="table1", metrics=dict(modes=1000, kl=0.05))
        make_run("table1", f"gan_r1+r2_seed{seed}", loss="gan", seed=seed, feeds="table1", metrics=dict(modes=999, kl=0.1))
        make_run("lazy", f"lazy8_seed{seed}", lazy_interval=8, seed=seed, feeds="lazy-reg-stackedmnist", metrics=dict(modes=600, kl=1.0 + seed))
    runs = collect(make_run.root).runs
    table = stackedmnist_table(runs)
    rows = {row.iloc[0].text: row for _, row in table.cells.iterrows()}
    assert list(rows) == ["RpGAN + R1 + R2, every step (table1's runs)", "RpGAN + R1 + R2, every 8th step x 8"]
    assert rows["RpGAN + R1 + R2, every step (table1's runs)"]["KL"].mean == 0.05  # GAN's runs are not twins
    assert rows["RpGAN + R1 + R2, every 8th step x 8"]["KL"].mean == 1.5
    assert stackedmnist_table(runs[runs["feeds"] == "table1"]) is None


def test_dirac_figure_draws_the_prediction_through_the_lazy1_anchor(make_run):
    _toy(make_run, "lazy-reg-toys", "circle", 2e-4, 1, [0.01, 0.04])  # geometric mean 0.02
    _toy(make_run, "lazy-reg-toys", "circle", 2e-4, 8, [0.03, 0.03])
    _toy(make_run, "dirac-toys", "circle", 8e-4, 1, [0.05, 0.05])
    fig, axes = plot_dirac_toys(collect(make_run.root).runs, lazy_factor=3.95)
    assert len(axes) == 1  # no line runs: one panel
    lines = {line.get_label(): line for line in axes[0].get_lines()}
    one, eight = lines["prediction, lazy 1 (slope 1)"], lines["prediction, lazy 8 (x3.95)"]
    x, y = one.get_xdata(), one.get_ydata()
    assert np.allclose(y / x, 0.02 / 2e-4) and np.allclose(eight.get_ydata(), 3.95 * y)
    fig.clf()


def test_lazy_factor_is_the_geometric_mean_ratio_at_gamma_one():
    data = {"gammas": [0.1, 1.0], "cycle_size": {"1": [[1, 1], [1.0, 2.0]], "8": [[9, 9], [4.0, 2.0]]}}
    assert abs(lazy_factor(data) - 2.0) < 1e-12  # ratios 4 and 1
