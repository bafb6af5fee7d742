"""The local executor gives each parallel job its own GPU, round robin over the host's (issue 22)."""
import json

from roadmap import files
from runners import launch
from runners.cli import main

EXPERIMENT = """\
description: two tiny toy runs, one GPU asked per run
base: {model: toy_mlp, model_args: {hidden: 8, depth: 1}, dataset: 25gaussians, batch: 64, duration_kimg: 0.064,
       tick_kimg: 0.064, eval_samples: 500, device: cpu}
seeds: [0, 1]
resources: {timeout_min: 5, cpus_per_task: 1, gpus_per_node: 1, max_parallel: 2}
"""


def test_slots_deal_gpus_round_robin():
    assert launch.local_gpu_slots(4, dict(gpus_per_node=1), ["0", "1", "2"]) == ["0", "1", "2", "0"]
    assert launch.local_gpu_slots(3, dict(gpus_per_node=2), ["4", "5", "6", "7"]) == ["4,5", "6,7", "4,5"]
    assert launch.local_gpu_slots(2, dict(gpus_per_node=1), ["0"]) == [None, None]  # one GPU: nothing to deal
    assert launch.local_gpu_slots(2, dict(gpus_per_node=0), ["0", "1"]) == [None, None]  # CPU jobs
    assert launch.local_gpu_slots(2, dict(gpus_per_node=2, tasks_per_node=2), ["0", "1", "2", "3"]) == [None, None]  # DDP sets its own


def test_parallel_local_jobs_see_different_gpus(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "_host_gpus", lambda: ["0", "1"])  # a two-GPU host, as the parent sees it
    path = tmp_path / "two.yaml"
    path.write_text(EXPERIMENT)
    out = tmp_path / "results"
    assert main(["run", str(path), "--executor", "local", "--out", str(out), "--no-progress"]) == 0
    seen = sorted(files.read_json(out / "two" / f"seed{seed}" / "job.json")["cuda_visible_devices"] for seed in (0, 1))
    assert seen == ["0", "1"]
    assert all(json.loads((out / "two" / f"seed{seed}" / "summary.json").read_text())["status"] == "completed" for seed in (0, 1))


def test_a_requeued_job_keeps_its_gpu():
    job = launch.TrainingJob()
    specs = [({"seed": 1}, "/tmp/a")]
    assert job.checkpoint(specs, "1").args == (specs, "1")
    assert job.checkpoint(specs).args == (specs,)


def test_jobs_sharing_a_gpu_size_their_micro_batch_for_their_share(monkeypatch):
    import types

    import torch

    from roadmap import trainer
    from roadmap.config import resolve
    from roadmap.losses import LossSpec

    assert launch.local_gpu_share(3, dict(gpus_per_node=1), ["0"]) == 3  # table3 --preset gpu: 3 E runs on one GPU
    assert launch.local_gpu_share(3, dict(gpus_per_node=1), ["0", "1", "2"]) == 1
    assert launch.local_gpu_share(4, dict(gpus_per_node=1), ["0", "1"]) == 2
    assert launch.local_gpu_share(3, dict(gpus_per_node=0), []) == 1
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace(total_memory=80 * 2**30))
    config = resolve(dict(model="E", model_args=dict(preset="stackedmnist", width=1.0, precision="bf16"), batch=512))
    loss = LossSpec("rpgan", ("r1", "r2"), 1)
    alone = trainer._with_default_micro_batch(config, loss, torch.device("cuda"), 1).batch_gpu
    monkeypatch.setenv("R3BENCH_GPU_SHARE", "3")
    shared = trainer._with_default_micro_batch(config, loss, torch.device("cuda"), 1).batch_gpu
    assert alone == 256 and shared == 64  # ~63 GiB alone; three jobs of ~16 GiB fit in 80 GB together
    assert trainer._with_default_micro_batch(config, loss, torch.device("cpu"), 1).batch_gpu is None  # CPU: one pass
