"""Synthetic run folders with known numbers for the report tests."""
import json

import pytest
import yaml


# The short experiment names of these tests and the table each one feeds.
TEST_FEEDS = {"x": "table1", "sweep": "table1", "nested": "table1", "roadmap": "table2", "toy": "toy2d-ablation",
              "quick": "toy2d-ablation"}


def write_run(root, experiment, name, status="completed", metrics=None, ticks=None, reason=None, stability=None,
              git_commit="abc1234", **config):
    """A run folder as the trainer writes it: config.yaml, metrics.jsonl, summary.json (unless running; `stability`: its
    roadmap/stability.py section)."""
    run_dir = root / experiment / name
    run_dir.mkdir(parents=True)
    full = dict(model="small_resnet", model_args={"width": 0.125}, dataset="stackedmnist", dataset_args={},
                preset=None, loss="rpgan", penalties=["r1", "r2"], lazy_interval=1, gamma=1.0, lr=2e-4,
                seed=0, device="cpu", batch=32)
    if "feeds" not in config:  # as the bundled experiments declare: the claimed name on the experiment path
        from reports.catalog import claimed_feeds

        parts = experiment.split("/")
        known = [part for part in parts if part in claimed_feeds()]
        full["feeds"] = known[-1] if known else TEST_FEEDS.get(parts[0], parts[0])
    full.update(config)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(full))
    ticks = ticks if ticks is not None else [
        dict(tick=i + 1, kimg=float(i + 1), loss_G=1.0 + i, loss_D=0.5, grad_norm_real=0.1, grad_norm_fake=0.2 * (i + 1))
        for i in range(3)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(t) + "\n" for t in ticks))
    if status != "running":
        summary = dict(status=status, reason=reason, kimg=ticks[-1]["kimg"] if ticks else 0.0,
                       diverged_kimg=ticks[-1]["kimg"] if status == "diverged" else None,
                       metrics=metrics or {}, wall_seconds=12.5, device="cpu (x86_64, 2 cores)",
                       git_commit=git_commit, config_hash=f"hash-{name}", experiment=experiment, run=name, torch="2.x")
        if stability is not None:
            summary["stability"] = stability
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


@pytest.fixture
def make_run(tmp_path):
    root = tmp_path / "results"
    root.mkdir()

    def make(experiment, name, **kwargs):
        return write_run(root, experiment, name, **kwargs)

    make.root = root
    return make
