"""The `gpu` presets (one lent H100, one 10-minute command): they expand for CUDA, and each one's code path runs on CPU at tiny size."""
import dataclasses

import pytest

from roadmap import trainer
from runners.experiment import expand, load_experiment

GPU_PRESETS = ("table1", "table3", "precision")


@pytest.mark.parametrize("name", GPU_PRESETS)
def test_gpu_preset_expands_for_cuda_at_table_9_scale(name, tmp_path, mnist_root):
    specs = expand(load_experiment(name), tmp_path, scale="gpu")
    assert len(specs) >= 3
    for spec in specs:
        assert spec.config.device == "cuda" and spec.config.batch == 512  # Table 9's Stacked MNIST batch
        assert spec.config.dataset_args["resolution"] == 32


@pytest.mark.parametrize("name", GPU_PRESETS)
def test_gpu_preset_code_path_runs_on_cpu_at_tiny_size(name, tmp_path, mnist_root):
    """Everything of the preset but its size and device: the network family, precision, scoring and evaluation."""
    spec = expand(load_experiment(name), tmp_path, scale="gpu")[-1]
    tiny_width = dict(width=4) if spec.config.model == "small_resnet" else dict(width=1 / 64)
    config = dataclasses.replace(spec.config, device="cpu", batch=8, duration_kimg=0.016, tick_kimg=0.008, burn_in_kimg=0.008,
                                 score_ticks=1, score_samples=64, eval_samples=128, threads=1,
                                 model_args=dict(spec.config.model_args, **tiny_width))
    summary = trainer.run(config, tmp_path / "run")
    assert summary["status"] == "completed", summary.get("reason")
    assert 0 <= summary["metrics"]["modes"] <= 1000 and summary["metrics"]["fd_mnist_classifier"] > 0
