"""torch.distributed through submitit: 2 gloo ranks on CPU follow the 1-process run with the same global batch."""
import json

import pytest
import torch

from roadmap import files, trainer
from roadmap.registry import create_model
from runners.cli import main
from runners.experiment import expand, load_experiment

EXPERIMENT = """\
description: one tiny run on two ranks
base: {model: toy_mlp, model_args: {hidden: 32, depth: 2}, dataset: 25gaussians, loss: rpgan, penalties: [r1, r2],
       batch: 64, duration_kimg: 0.64, tick_kimg: 0.128, checkpoint_ticks: 5, lr: 1.0e-3, ema_half_life_kimg: 0.1,
       eval_samples: 2000}
seeds: [5]
resources: {timeout_min: 10, cpus_per_task: 1, tasks_per_node: 2}
"""
# Ranks differ from one process only in float summation order: each rank's loss and penalty are
# means over half the batch, and the gradients are summed across ranks before the division.
# Measured after these 10 Adam steps: at most 6e-8 (a few float32 ulps) on parameters of size
# up to ~0.7. Without gradient averaging, or with ranks training on the same slice, parameters
# differ by ~1e-3 after the first step.
TOLERANCE = 1e-6


def test_two_gloo_ranks_equal_one_process(tmp_path):
    path = tmp_path / "ddp.yaml"
    path.write_text(EXPERIMENT)
    out = tmp_path / "results"
    assert main(["run", str(path), "--executor", "local", "--out", str(out), "--no-progress"]) == 0
    [spec] = expand(load_experiment(str(path)), out)
    record = json.loads((spec.run_dir / "job.json").read_text())
    assert record["world_size"] == 2 and record["cluster"] == "local"
    trainer.train(spec.config, tmp_path / "one")

    two, one = (torch.load(d / files.CHECKPOINT, weights_only=False) for d in (spec.run_dir, tmp_path / "one"))
    assert two["step"] == one["step"] == 10
    for network in ("generator", "discriminator", "generator_ema"):
        for name, value in one[network].items():
            assert torch.allclose(two[network][name], value, rtol=0, atol=TOLERANCE), (network, name)
    torch.manual_seed(spec.config.seed)  # the initial weights, as the trainer draws them
    initial = create_model(spec.config.model, **spec.config.model_args).discriminator.state_dict()
    moved = max((one["discriminator"][name] - value).abs().max().item() for name, value in initial.items())
    assert moved > 100 * TOLERANCE  # the comparison above is not between untrained networks
    rows_two, rows_one = files.read_jsonl(spec.run_dir / "metrics.jsonl"), files.read_jsonl(tmp_path / "one" / "metrics.jsonl")
    assert len(rows_two) == len(rows_one) == 5  # rank 1 wrote nothing
    for row_two, row_one in zip(rows_two, rows_one):
        for key in ("loss_D", "loss_G", "r1", "r2", "grad_norm_real", "grad_norm_fake"):
            assert row_two[key] == pytest.approx(row_one[key], rel=1e-5, abs=1e-7), key


def test_batch_that_does_not_split_over_ranks_fails_before_submission(tmp_path, capsys):
    path = tmp_path / "ddp.yaml"
    path.write_text(EXPERIMENT.replace("batch: 64", "batch: 63"))
    out = tmp_path / "results"
    assert main(["run", str(path), "--executor", "local", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "batch 63 does not split evenly over 2 ranks" in err and err.count("\n") == 1
    assert not out.exists()
