"""Paper presets as the paper ran them (Table 9 GPU counts) and the per-rank plan that `run --dry-run` prints (issue 22)."""
import dataclasses
import re

import pytest

from roadmap.memory import CONTEXT_BYTES, USABLE, estimate
from roadmap.presets import PRESETS
from runners.cli import main
from runners.experiment import expand, load_experiment, resources_for
from runners.plan import rank_plan, ranks

# (experiment, GPUs): Table 9's count for the preset each paper run trains Config E at; Table 1's
# network on one GPU (the paper gives no count for it).
PAPER_GPUS = [("table2", 8), ("table3", 8), ("beta2", 32), ("table1", 1)]


@pytest.mark.parametrize("name, gpus", PAPER_GPUS)
def test_dry_run_shows_gpus_per_gpu_batch_micro_batch_and_memory(name, gpus, tmp_path, capsys, mnist_root):
    assert main(["run", name, "--preset", "paper", "--dry-run", "--out", str(tmp_path / "r")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "per-GPU batch" in line]
    specs = expand(load_experiment(name), tmp_path / "r", scale="paper")
    assert len(lines) == len(specs) > 0
    for spec, line in zip(specs, lines):
        assert line.strip().startswith(f"{gpus} GPUs"), line
        assert f"per-GPU batch {spec.config.batch // gpus}," in line
        size_D, count_D = map(int, re.search(r"micro-batch D (\d+) x (\d+)", line).groups())
        assert size_D * count_D == spec.config.batch // gpus
        peak = float(re.search(r"~([\d.]+) GiB peak per GPU", line).group(1))
        assert 0.5 < peak <= 80 * USABLE  # fits the default 80 GB GPU


def test_paper_presets_ask_for_table_9_gpu_counts_one_rank_per_gpu(mnist_root):
    checked = 0
    for name in ("table2", "table3", "beta2", "precision", "activations", "groupnorm", "lazy-reg-config-e"):
        experiment = load_experiment(name)
        resources = resources_for(experiment, "paper")
        preset = experiment.scales["paper"]["preset"]
        assert ranks(resources) == PRESETS[preset]["gpus"], name
        assert resources["gpus_per_node"] == resources["tasks_per_node"], name
        checked += 1
    assert checked == 7 and PRESETS["imagenet32"]["gpus"] == 32 and PRESETS["ffhq256"]["gpus"] == 8


def test_default_micro_batch_is_the_largest_that_fits_the_gpu(tmp_path, mnist_root):
    spec = expand(load_experiment("table3"), tmp_path, scale="paper")[0]  # E at 64 per GPU
    roomy = rank_plan(spec.config, resources_for(load_experiment("table3"), "paper"))
    tight = rank_plan(spec.config, dict(resources_for(load_experiment("table3"), "paper"), gpu_mem_gb=12))
    assert "micro-batch D 64 x 1" in roomy
    size = int(re.search(r"micro-batch D (\d+) x", tight).group(1))
    assert size < 64 and 64 % size == 0
    budget = 12 * 2**30 * USABLE - CONTEXT_BYTES
    assert estimate("E", spec.config.model_args, size).peak <= budget < estimate("E", spec.config.model_args, 2 * size).peak
    explicit = rank_plan(dataclasses.replace(spec.config, batch_gpu=16, batch_gpu_G=32), resources_for(load_experiment("table3"), "paper"))
    assert "micro-batch D 16 x 4 / G 32 x 2" in explicit


def test_a_micro_batch_that_does_not_split_the_share_fails_the_dry_run_in_one_line(tmp_path, capsys, mnist_root):
    assert main(["run", "table3", "--preset", "paper", "batch_gpu=24", "--dry-run", "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "batch_gpu: 64 images per rank" in error
