"""results/reference/benchmarks/gpu_check.sh in its CPU dry mode (--device cpu, tiny): every step runs and leaves its evidence (issue 22)."""
import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "results" / "reference" / "benchmarks" / "gpu_check.sh"


def test_gpu_check_cpu_dry_mode(tmp_path, mnist_root):
    inputs = tmp_path / "inputs"  # no wheels, no official checkout: those steps say so and the rest runs
    inputs.mkdir()
    (inputs / "MNIST").symlink_to(mnist_root / "MNIST")
    out = tmp_path / "out"
    environment = dict(os.environ, PYTHON=sys.executable)
    environment.pop("R3BENCH_DATA")  # the script reads MNIST from its inputs folder
    done = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--out", str(out), "--inputs", str(inputs)],
                          capture_output=True, text=True, env=environment, timeout=900)
    steps = {row["step"]: row for row in map(json.loads, (out / "steps.jsonl").read_text().splitlines())}
    assert done.returncode == 0, (done.stdout, steps)
    assert list(steps) == ["environment", "install", "host_sync", "bench", "operators", "official", "table3"]
    assert steps["environment"]["status"] == "ok" and json.loads((out / "environment.json").read_text())["device"] == "cpu"
    assert steps["install"]["status"] == "ok" or steps["install"]["status"].startswith("skipped (no wheels")
    assert steps["official"]["status"].startswith("skipped (no checkout of the official code")
    counts = {name: entry["host_reads"] for name, entry in json.loads((out / "host_sync.json").read_text())["steps"].items()}
    assert counts["E fp32"] == counts["E bf16"] == counts["small_resnet fp32"] == 0 and counts["A fp32"] == 4
    assert counts["E bf16 + precision_events"] > 50
    bench = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert [(row["preset"], row["precision"]) for row in bench] == [("stackedmnist", "fp32"), ("ffhq64", "fp32")]
    assert all(row["img_per_s"] > 0 and row["peak_mem_mb"] > 0 and row["estimated_peak_mb"] > 0 for row in bench)
    [operators] = json.loads((out / "operators.json").read_text())["rows"]  # fp32 on the CPU: agree to 1e-5, as tests/roadmap/test_step.py
    assert steps["operators"]["status"] == "ok" and operators["precision"] == "fp32"
    assert operators["max_relative_statistic"] < 1e-5 and operators["max_relative_gradient"] < 1e-5
    assert operators["plain_img_per_s"] > 0 and operators["fast_img_per_s"] > 0
    summary = json.loads((out / "runs" / "table3" / "seed0" / "summary.json").read_text())
    assert steps["table3"]["status"] == "ok" and summary["status"] == "completed" and 0 < summary["metrics"]["modes"] <= 1000
    assert summary["device"].startswith("cpu")


def test_gpu_check_refuses_a_bad_device(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT), "--device", "tpu", "--out", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "--device: expected cpu or cuda, got tpu" in done.stderr
