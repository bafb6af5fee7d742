"""A real single-node SLURM (runners/slurm/up.sh): a sweep as one job array, and a preempted job that resumes.

The cluster needs root and the Debian packages that .ci/slurm-setup installs. Without them the
tests skip with the reason, except under CI=true, where they fail: CI must run them.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import runners
from roadmap import files, trainer
from runners.cli import main
from runners.experiment import expand, load_experiment
from runners.launch import submit

SCRIPTS = Path(runners.__file__).resolve().parent / "slurm"
BINARIES = ("slurmctld", "slurmd", "sbatch", "sacct", "munged", "slurmdbd", "mariadbd")


def skip_or_fail(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"SLURM test cluster: {reason}", pytrace=False)
    pytest.skip(f"SLURM test cluster: {reason}")


def free_ports(n: int) -> list:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="session")
def slurm_conf(tmp_path_factory):
    """Bring a cluster up under a temporary folder, on free ports; yield its slurm.conf; tear it down."""
    if os.geteuid() != 0:
        skip_or_fail("needs root")
    path = os.environ["PATH"] + ":/usr/sbin:/sbin"
    missing = [b for b in BINARIES if shutil.which(b, path=path) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed (run .ci/slurm-setup)")
    # munged wants every folder above its socket searchable by all: not so under pytest's 0700 tmp_path.
    base = Path(tempfile.mkdtemp(prefix="r3bench-slurm-"))
    base.chmod(0o755)
    ctld, slurmd, dbd, db = free_ports(4)
    environment = dict(os.environ, PATH=path, SLURM_BASE=str(base), SLURMCTLD_PORT=str(ctld), SLURMD_PORT=str(slurmd),
                       SLURMDBD_PORT=str(dbd), SLURM_DB_PORT=str(db), SLURM_NODE_CPUS="6")
    environment.pop("SLURM_CONF", None)

    def down():
        subprocess.run(["bash", str(SCRIPTS / "down.sh"), "--purge"], env=environment, capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)

    try:
        up = subprocess.run(["bash", str(SCRIPTS / "up.sh")], env=environment, capture_output=True, text=True, timeout=180)
        failure = None if up.returncode == 0 else (up.stderr.strip().splitlines() or ["up.sh failed"])[-1]
    except subprocess.TimeoutExpired:
        failure = "up.sh took over 180 s"
    if failure is not None:
        down()
        skip_or_fail(failure)
    yield base / "etc" / "slurm.conf"
    down()


def sacct(conf: Path, job_id: str, settled: int, timeout: float = 30.0) -> dict:
    """{array task id: state} of one job from the accounting database, once `settled` tasks have ended.

    submitit counts a job done when its result file exists; SLURM records the end a moment later.
    """
    end = time.time() + timeout
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State"], capture_output=True,
                             text=True, env=dict(os.environ, SLURM_CONF=str(conf)), check=True).stdout
        states = dict(line.split("|")[:2] for line in out.split())
        if sum(state not in ("PENDING", "RUNNING", "REQUEUED") for state in states.values()) >= settled or time.time() > end:
            return states
        time.sleep(0.2)


SWEEP = """\
description: six tiny runs for the test cluster
base: {model: toy_mlp, model_args: {hidden: 16, depth: 1}, batch: 16, duration_kimg: 0.064, tick_kimg: 0.032,
       eval_samples: 1000}
grid: {dataset: [ring8, circle], penalties: [[r1], [r1, r2], [r2]]}
seeds: [0]
resources: {timeout_min: 5, cpus_per_task: 1}
"""


def test_sweep_of_six_runs_is_one_job_array_on_slurm(slurm_conf, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_CONF", str(slurm_conf))  # submitit's sbatch/sacct read it from the environment
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    out = tmp_path / "results"
    assert main(["run", str(path), "--executor", "slurm", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "submitted 6 runs as SLURM job array " in printed
    array = printed.split("SLURM job array ")[1].split()[0]
    specs = expand(load_experiment(str(path)), out)
    records = [json.loads((spec.run_dir / "job.json").read_text()) for spec in specs]
    assert sorted(record["job_id"] for record in records) == [f"{array}_{i}" for i in range(6)]
    assert {record["cluster"] for record in records} == {"slurm"}
    assert all(files.read_json(spec.run_dir / "summary.json")["status"] == "completed" for spec in specs)
    assert sacct(slurm_conf, array, settled=6) == {f"{array}_{i}": "COMPLETED" for i in range(6)}

    assert main(["status", str(path), "--out", str(out)]) == 0
    status = capsys.readouterr().out
    assert all(f"{array}_{i}" in status for i in range(6)) and "6 completed" in status
    assert main(["run", str(path), "--executor", "slurm", "--out", str(out), "--no-progress"]) == 0
    assert "6 runs already finished" in capsys.readouterr().out


LONG = """\
description: one run to preempt
base: {model: toy_mlp, model_args: {hidden: 64, depth: 2}, dataset: ring8, batch: 64, duration_kimg: 25.6,
       tick_kimg: 1.28, checkpoint_ticks: 1, lr: 1.0e-3, eval_samples: 1000}
seeds: [1]
resources: {timeout_min: 5, cpus_per_task: 1}
"""


def test_preempted_slurm_job_requeues_and_resumes_the_same_trajectory(slurm_conf, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_conf))
    path = tmp_path / "long.yaml"
    path.write_text(LONG)
    [spec] = expand(load_experiment(str(path)), tmp_path / "results")
    [job] = submit([spec], "slurm", dict(timeout_min=5), tmp_path / "submitit")
    end = time.time() + 120
    while not (spec.run_dir / files.CHECKPOINT).exists():
        assert time.time() < end, "no checkpoint within 120 s"
        time.sleep(0.05)
    job._interrupt()  # USR2, as SLURM sends before a time limit or preemption
    [[summary]] = job.results()  # one task, one run
    assert summary["status"] == "completed"
    record = json.loads((spec.run_dir / "job.json").read_text())
    assert record["starts"] == 2 and record["job_id"] == job.job_id
    assert sacct(slurm_conf, job.job_id, settled=1) == {job.job_id: "COMPLETED"}
    trainer.train(spec.config, tmp_path / "whole")
    keep = lambda rows: [{k: v for k, v in row.items() if k not in ("seconds", "tick_seconds")} for row in rows]  # noqa: E731
    assert keep(files.read_jsonl(spec.run_dir / "metrics.jsonl")) == keep(files.read_jsonl(tmp_path / "whole" / "metrics.jsonl"))
    assert summary["metrics"] == files.read_json(tmp_path / "whole" / "summary.json")["metrics"]
