"""The training loop: exact lazy weighting, determinism, exact resume, divergence and failure records."""
import json

import pytest
import torch
import yaml
from torch import nn

from roadmap.losses import LossSpec
from roadmap import files, trainer
from roadmap import step as step_module
from roadmap.config import resolve
from roadmap.registry import ModelPair

TINY = dict(model="toy_mlp", model_args=dict(hidden=16, depth=2, latent_dim=4), dataset="ring8",
            batch=16, duration_kimg=0.256, tick_kimg=0.032, checkpoint_ticks=2, gamma=1.0, lr=1e-3)


def ticks(run_dir):
    """metrics.jsonl without the wall-clock columns."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "tick_seconds")}
            for row in files.read_jsonl(run_dir / "metrics.jsonl")]


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([0.5, -2.0]))

    def forward(self, x, labels=None):
        return x @ self.weight


class Shift(nn.Module):
    def forward(self, z, labels=None):
        return z + 1.0


@pytest.mark.parametrize("penalties, copies", [(["r1"], 1), (["r2"], 1), (["r1", "r2"], 2)])
def test_penalty_gradient_is_k_gamma_w(penalties, copies):
    """With D(x) = w.x each penalty is |w|^2, so its gradient on step weight k is k * gamma * w per penalty."""
    gamma, k = 0.7, 8
    real, z = torch.randn(6, 2), torch.randn(6, 2)
    gradients = []
    for weight in (0, k):
        pair = ModelPair(Shift(), Linear(), 2, LossSpec("rpgan"))
        trainer.discriminator_step(pair, real, None, z, "rpgan", penalties, gamma, weight)
        gradients.append(pair.discriminator.weight.grad.clone())
    w = torch.tensor([0.5, -2.0])
    assert torch.allclose(gradients[1] - gradients[0], copies * k * gamma * w, atol=1e-6)


def test_penalties_are_recorded_on_exactly_every_kth_step(tmp_path):
    config = resolve(dict(TINY, lazy_interval=3, tick_kimg=0.016, duration_kimg=0.16, penalties=["r1"]))
    trainer.train(config, tmp_path)
    rows = ticks(tmp_path)
    assert len(rows) == 10  # one tick per step
    assert [row["tick"] for row in rows if row["r1"] is not None] == [1, 4, 7, 10]  # steps 0, 3, 6, 9
    assert all(row["r2"] is None for row in rows)


def test_same_seed_same_trajectory_and_files(tmp_path):
    config = resolve(TINY)
    first = trainer.train(config, tmp_path / "a")
    trainer.train(config, tmp_path / "b")
    assert ticks(tmp_path / "a") == ticks(tmp_path / "b")
    assert first["status"] == "completed" and first["kimg"] == pytest.approx(0.256)
    assert set(first["metrics"]) == {"modes", "modes_pacgan", "modes_total", "hq_fraction", "kl"}
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["loss"] == "rpgan" and saved["penalties"] == ["r1", "r2"] and saved["lazy_interval"] == 1
    assert (tmp_path / "a" / "samples" / "final.png").stat().st_size > 1000
    row = files.read_jsonl(tmp_path / "a" / "metrics.jsonl")[0]
    for key in ("kimg", "loss_G", "loss_D", "r1", "r2", "logits_real", "logits_fake", "grad_norm_real",
                "grad_norm_fake", "lr", "gamma", "beta2", "ema_beta", "seconds"):
        assert key in row
    trainer.train(resolve(dict(TINY, seed=1)), tmp_path / "c")
    assert ticks(tmp_path / "c")[0]["loss_D"] != ticks(tmp_path / "a")[0]["loss_D"]


def test_resume_continues_the_same_trajectory(tmp_path, monkeypatch):
    config = resolve(dict(TINY, ema_half_life_kimg=[0, 0.1], burn_in_kimg=0.128, gamma=[1.0, 0.1]))
    trainer.train(config, tmp_path / "whole")

    saves = []
    real_save = files.save_checkpoint

    def save_then_die(run_dir, state):
        real_save(run_dir, state)
        saves.append(state["tick"])
        if len(saves) == 2:  # killed right after the checkpoint at tick 4
            raise KeyboardInterrupt

    monkeypatch.setattr(files, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(config, tmp_path / "resumed")
    monkeypatch.setattr(files, "save_checkpoint", real_save)
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as stream:  # a tick logged after the checkpoint
        stream.write(json.dumps(dict(tick=5, kimg=0.16, loss_G=0.0)) + "\n")
    summary = trainer.train(config, tmp_path / "resumed")
    assert ticks(tmp_path / "resumed") == ticks(tmp_path / "whole")
    assert summary["metrics"] == files.read_json(tmp_path / "whole" / "summary.json")["metrics"]


def test_exploding_fake_gradient_ends_as_diverged(tmp_path):
    summary = trainer.train(resolve(dict(TINY, divergence_grad_norm=1e-9)), tmp_path)
    assert summary["status"] == "diverged"
    assert summary["diverged_kimg"] == pytest.approx(0.016)  # the first step
    assert "grad_x D" in summary["reason"]
    assert len(ticks(tmp_path)) == 1


def test_non_finite_loss_ends_as_diverged(tmp_path, monkeypatch):
    real_step = trainer.discriminator_step

    def nan_step(*args):
        stats = real_step(*args)
        return dict(stats, loss_D=float("nan"))

    monkeypatch.setattr(step_module, "discriminator_step", nan_step)
    summary = trainer.train(resolve(TINY), tmp_path)
    assert summary["status"] == "diverged" and summary["reason"] == "non-finite loss or gradient"


def test_exception_becomes_failed_summary(tmp_path):
    summary = trainer.run(resolve(dict(TINY, model_args=dict(hidden=16, no_such_option=1))), tmp_path)
    assert summary["status"] == "failed" and "no_such_option" in summary["reason"]
    assert files.read_json(tmp_path / "summary.json")["status"] == "failed"


def test_resolution_mismatch_between_model_and_data_is_one_clear_line(tmp_path):
    summary = trainer.run(resolve(dict(TINY, model_args=dict(hidden=16, data_dim=3))), tmp_path)
    assert summary["status"] == "failed"
    assert "makes samples of shape (3,), but data set 'ring8' has shape (2,)" in summary["reason"]


def test_grad_scaler_leaves_an_fp32_trajectory_bitwise_unchanged(tmp_path):
    """Loss scales are powers of two: scaling and unscaling fp32 gradients is exact, so only the
    recorded scale differs; fp16 runs use the same path to survive gradient underflow."""
    trainer.train(resolve(TINY), tmp_path / "plain")
    trainer.train(resolve(dict(TINY, grad_scaler=True)), tmp_path / "scaled")
    scaled = ticks(tmp_path / "scaled")
    assert scaled[0]["loss_scale_D"] == 65536.0
    assert [{k: v for k, v in row.items() if not k.startswith("loss_scale")} for row in scaled] == ticks(tmp_path / "plain")
