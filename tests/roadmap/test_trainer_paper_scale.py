"""The training loop as the official code runs it (second real batch, x-flips, augmentation, TF32, device-side statistics), its logs and its periodic scores."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from roadmap import files, trainer
from roadmap import step as step_module
from roadmap.config import resolve
from roadmap.errors import ConfigError
from roadmap.losses import LossSpec
from roadmap.registry import ModelPair

TINY = dict(model="toy_mlp", model_args=dict(hidden=16, depth=2, latent_dim=4), dataset="ring8",
            batch=16, duration_kimg=0.128, tick_kimg=0.032, checkpoint_ticks=2, gamma=1.0, lr=1e-3)


def test_g_step_draws_its_own_real_batch_after_ds(tmp_path, monkeypatch):
    """The official loop draws D's real batch, then a second one for G, from the same data stream."""
    seen = []
    real_iteration = step_module.training_iteration

    def spy(pair, optimization, loss, step, gamma, batch_D, batch_G, *args):
        seen.append((batch_D.real.clone(), batch_G.real.clone()))
        return real_iteration(pair, optimization, loss, step, gamma, batch_D, batch_G, *args)

    monkeypatch.setattr(trainer, "training_iteration", spy)
    config = resolve(dict(TINY, duration_kimg=0.032))
    trainer.train(config, tmp_path)
    data = trainer.create_dataset("ring8")
    rng = torch.Generator().manual_seed(config.seed * 2 + 1)
    for real_D, real_G in seen:
        assert torch.equal(real_D, data.sample(16, rng)[0])
        assert torch.equal(real_G, data.sample(16, rng)[0])
        assert not torch.equal(real_D, real_G)


def test_penalties_differentiate_the_images_before_augmentation():
    """D(x) = w.x after an augmentation x -> 2x: R1's integrand is grad_x D(aug(x)) = 2w, not w."""

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.tensor([0.5, -2.0]))

        def forward(self, x, labels=None):
            return x @ self.weight

    pair = ModelPair(lambda z, labels=None: z, Linear(), 2, LossSpec("rpgan", ("r1",)))
    stats = step_module.discriminator_step(pair, torch.randn(4, 2), None, torch.randn(4, 2), "rpgan", ("r1",), 1.0, 1,
                                           augment=lambda x: 2 * x)
    assert stats["grad_norm_real"].item() == pytest.approx(2 * (0.5**2 + 2.0**2) ** 0.5)
    assert stats["r1"].item() == pytest.approx(4 * (0.5**2 + 2.0**2))


def test_step_statistics_stay_on_the_device_as_tensors():
    pair = trainer.create_model("toy_mlp", hidden=8, depth=1, latent_dim=2)
    stats = step_module.discriminator_step(pair, torch.randn(8, 2), None, torch.randn(8, 2), "rpgan", ("r1", "r2"), 1.0, 1)
    stats.update(step_module.generator_step(pair, torch.randn(8, 2), None, torch.randn(8, 2), "rpgan"))
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in stats.values())


def test_tf32_is_off_unless_asked():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        trainer.set_tf32(torch.device("cuda"), False)
        assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
        trainer.set_tf32(torch.device("cuda"), True)
        assert torch.backends.cuda.matmul.allow_tf32 is True and torch.backends.cudnn.allow_tf32 is True
        trainer.set_tf32(torch.device("cpu"), False)  # CPU runs leave the flags alone
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _image_folder(path, count=8, size=8):
    path.mkdir()
    for i in range(count):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[:, : size // 2] = 255  # left half white: a flip moves it to the right
        Image.fromarray(pixels).save(path / f"{i:02d}.png")
    return path


def test_xflip_reaches_the_image_data_set(tmp_path):
    folder = _image_folder(tmp_path / "images")
    config = resolve(dict(dataset="imagefolder", dataset_args=dict(path=str(folder)), xflip=True))
    data = trainer._build_data(config, torch.device("cpu"))
    images, _ = data.sample(400, torch.Generator().manual_seed(0))
    flipped = (images[:, 0, 0, 0] < 0).float().mean().item()  # top-left pixel black: flipped
    assert 0.4 < flipped < 0.6


def test_xflip_and_augmentation_refused_for_data_that_cannot_take_them(tmp_path):
    from runners.experiment import expand, load_experiment

    experiment = tmp_path / "toy.yaml"
    experiment.write_text("base: {model: toy_mlp, dataset: ring8, duration_kimg: 1}\n")
    with pytest.raises(ConfigError, match="xflip: data set 'ring8' cannot flip"):
        expand(load_experiment(str(experiment)), tmp_path, overrides={"xflip": True})
    with pytest.raises(ConfigError, match="augment_p: data set 'ring8'"):
        expand(load_experiment(str(experiment)), tmp_path, overrides={"augment_p": [0, 0.3]})


def test_run_writes_log_periodic_scores_and_tensorboard(tmp_path):
    run_dir = tmp_path / "run"
    summary = trainer.train(resolve(dict(TINY, score_ticks=2, score_samples=500, logger="tensorboard")), run_dir)
    rows = files.read_jsonl(run_dir / "metrics.jsonl")
    assert [("score_modes" in row) for row in rows] == [False, True, False, False]  # tick 2; the last tick is the final score
    assert 0 <= rows[1]["score_modes"] <= 8
    log = (run_dir / "log.txt").read_text()
    assert "model: toy_mlp" in log and log.count(" tick ") == 4 and "finished: completed" in log
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    loss_d = events.Scalars("loss_D")
    assert [e.step for e in loss_d] == [32, 64, 96, 128]
    assert [e.value for e in loss_d] == pytest.approx([row["loss_D"] for row in rows])
    stored = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["modes"] == stored["metrics"]["modes"]
    from roadmap.stability import CONVERGENCE_KEYS, KEYS

    assert set(stored["stability"]) == set(KEYS) | set(CONVERGENCE_KEYS)  # recorded by the trainer from its own tick rows
    assert stored["stability"]["peak_loss_G"] == pytest.approx(max(row["loss_G_max"] for row in rows))


def test_a_full_disk_is_named_in_the_failure_reason():
    error = OSError(28, "No space left on device")
    assert trainer.failure_reason(error).startswith("no space left on device")
    assert trainer.failure_reason(RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos")).startswith(
        "no space left on device")
