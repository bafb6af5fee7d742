"""Stale evidence is flagged by the fingerprint of the computation, not by which files changed (issue 24)."""
import json

import pytest

from reports.collect import collect
from reports.staleness import mark_stale
from roadmap import step as step_module
from roadmap.config import resolve
from roadmap.fingerprint import FingerprintCache, compute_fingerprint
from roadmap.trainer import run
from runners.cli import main

TINY = dict(model="toy_mlp", model_args=dict(hidden=16, depth=2, latent_dim=4), dataset="ring8", loss="rpgan",
            penalties=["r1", "r2"], batch=16, duration_kimg=0.064, tick_kimg=0.032, checkpoint_ticks=2, gamma=1.0, lr=1e-3,
            feeds="toy2d-ablation")


@pytest.fixture
def results(tmp_path):
    for seed in (0, 1):
        summary = run(resolve(dict(TINY, seed=seed)), tmp_path / "results" / "toy" / f"run_seed{seed}")
        assert summary["status"] == "completed" and len(summary["fingerprint"]) == 16
    return tmp_path / "results"


def _stale(results_dir):
    runs = mark_stale(collect(results_dir).runs)
    return dict(zip(runs["run"], runs["stale"]))


def test_runs_of_this_code_are_current_and_share_one_fingerprint_across_seeds(results):
    summaries = [json.loads((results / "toy" / f"run_seed{s}" / "summary.json").read_text()) for s in (0, 1)]
    assert summaries[0]["fingerprint"] == summaries[1]["fingerprint"]  # the seed is not part of the computation's identity
    assert _stale(results) == {"run_seed0": None, "run_seed1": None}


def test_a_changed_or_missing_fingerprint_is_stale(results):
    path = results / "toy" / "run_seed0" / "summary.json"
    summary = json.loads(path.read_text())
    path.write_text(json.dumps(dict(summary, fingerprint="0123456789abcdef")))
    del summary["fingerprint"]
    (results / "toy" / "run_seed1" / "summary.json").write_text(json.dumps(summary))
    stale = _stale(results)
    assert stale["run_seed0"].startswith("fingerprint 0123456789abcdef, the code computes")
    assert stale["run_seed1"].startswith("no fingerprint")


def test_a_bitwise_refactor_keeps_runs_current_and_a_numeric_change_makes_them_stale(results, monkeypatch):
    config = resolve(TINY)
    before = compute_fingerprint(config)
    monkeypatch.setattr(step_module, "squared_norm", lambda g: (g * g).flatten(1).sum(1))  # same bits, other code
    assert compute_fingerprint(config) == before
    assert set(_stale(results).values()) == {None}
    monkeypatch.setattr(step_module, "squared_norm", lambda g: (g * g).flatten(1).sum(1) * (1 + 2 ** -20))  # moves the numbers
    assert compute_fingerprint(config) != before
    assert all(reason and reason.startswith("fingerprint") for reason in _stale(results).values())


def test_the_fingerprint_ignores_what_cannot_change_the_arithmetic_and_sees_what_can():
    cache = FingerprintCache()
    base = cache(resolve(TINY))
    assert cache(resolve(dict(TINY, seed=7, duration_kimg=9.0, threads=1, tick_kimg=1.0))) == base
    assert compute_fingerprint(resolve(dict(TINY, gamma=2.0))) != base
    assert compute_fingerprint(resolve(dict(TINY, lazy_interval=8))) != base


def test_report_check_fails_on_stale_tables_and_passes_on_current_ones(results, tmp_path, capsys):
    assert main(["report", str(results), "--out", str(tmp_path / "report"), "--check"]) == 0
    path = results / "toy" / "run_seed0" / "summary.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), fingerprint="0123456789abcdef")))
    assert main(["report", str(results), "--out", str(tmp_path / "report2"), "--check"]) == 1
    out = capsys.readouterr().out
    assert "stale runs in" in out and "toy-mixtures" in out
    assert "stale: 1 of 2 runs" in (tmp_path / "report2" / "report.md").read_text()
