"""Speed settings (issue 22): cudnn.benchmark on for CUDA runs unless turned off; `bench` applies training's TF32 setting and says which."""
import torch

from roadmap import bench, trainer
from roadmap.config import resolve


def test_cudnn_benchmark_follows_the_run_configuration_on_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    trainer.set_cudnn_benchmark(torch.device("cpu"), True)
    assert torch.backends.cudnn.benchmark is False  # a CPU run leaves the global flag alone
    trainer.set_cudnn_benchmark(torch.device("cuda"), True)  # sets the flag; needs no GPU
    assert torch.backends.cudnn.benchmark is True
    trainer.set_cudnn_benchmark(torch.device("cuda"), False)
    assert torch.backends.cudnn.benchmark is False
    assert resolve({}).cudnn_benchmark is True and resolve(dict(cudnn_benchmark=False)).cudnn_benchmark is False


def test_training_and_bench_apply_the_same_settings(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(trainer, "set_tf32", lambda device, enabled: calls.append(("tf32", device.type, enabled)))
    monkeypatch.setattr(trainer, "set_cudnn_benchmark", lambda device, enabled: calls.append(("cudnn", device.type, enabled)))
    trainer.train(resolve(dict(duration_kimg=0.064, batch=64, tick_kimg=0.064, tf32=True, cudnn_benchmark=False, eval_samples=64)),
                  tmp_path / "run")
    assert calls == [("tf32", "cpu", True), ("cudnn", "cpu", False)]
    calls.clear()
    result = bench.benchmark("E", "stackedmnist", width=1 / 32, batch=2, steps=1, warmup=0, tf32=True)
    assert calls == [("tf32", "cpu", True), ("cudnn", "cpu", True)]  # bench defaults: training's (TF32 as asked, cudnn.benchmark on)
    assert result["tf32"] is False and result["cudnn_benchmark"] is False  # what ran: neither exists on the CPU
    assert result["micro_batch"] == 2 and result["estimated_peak_mb"] > 0
