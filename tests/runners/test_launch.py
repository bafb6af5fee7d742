"""Running experiments end to end: in-process and through submitit's local executor; skip finished runs."""
import json

from roadmap import files
from runners.cli import main
from runners.run_folder import run_state

TINY = ["duration_kimg=0.064", "tick_kimg=0.032", "batch=16", "model_args.hidden=16", "model_args.depth=1"]


def test_runs_complete_then_are_skipped(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["run", "toy2d-ablation", "dataset=ring8", "loss=rpgan", "lazy_interval=1", "seeds=[0]", *TINY,
            "--executor", "debug", "--out", str(out)]
    assert main(argv) == 0
    runs = sorted(path for path in (out / "toy2d-ablation").iterdir() if path.is_dir())
    assert [run.name for run in runs] == ["ring8_rpgan_r1+r2_lazy1_seed0", "ring8_rpgan_r1_lazy1_seed0"]
    assert (out / "toy2d-ablation" / "experiment.json").is_file()  # the wall-time record beside the runs
    assert all(run_state(run) == ("completed", 0.064) for run in runs)
    stamps = [(run / "summary.json").stat().st_mtime_ns for run in runs]
    capsys.readouterr()
    assert main(argv) == 0
    assert "2 runs already finished" in capsys.readouterr().out
    assert stamps == [(run / "summary.json").stat().st_mtime_ns for run in runs]
    assert main(argv + ["--force"]) == 0
    assert stamps != [(run / "summary.json").stat().st_mtime_ns for run in runs]


def test_local_executor_runs_jobs_in_subprocesses(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["run", "toy2d-ablation", "dataset=circle", "loss=gan", "penalties=[r1, r2]", "seeds=[0]", *TINY,
            "--executor", "local", "--out", str(out), "--max-parallel", "2"]
    assert main(argv) == 0
    runs = sorted(path for path in (out / "toy2d-ablation").iterdir() if path.is_dir())
    assert len(runs) == 2
    for run in runs:
        summary = files.read_json(run / "summary.json")
        assert summary["status"] == "completed" and set(summary["metrics"]) == {"support_distance", "coverage", "hq_fraction", "kl"}
        assert json.loads((run / "job.json").read_text())["cluster"] == "local"
    assert "summary (mean±std over completed seeds" in capsys.readouterr().out


def test_failed_runs_print_their_reason_and_exit_non_zero(tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["run", "toy2d-ablation", "dataset=ring8", "loss=gan", "penalties=[r1]", "lazy_interval=1", "seeds=[0]",
            *TINY, "model_args.data_dim=3", "--executor", "debug", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "failed: toy2d-ablation/ring8_gan_r1_lazy1_seed0: ConfigError: model_args:" in err


def test_a_failed_run_loses_its_old_summary_when_tried_again(tmp_path):
    from runners.experiment import expand, load_experiment
    from runners.run_folder import select

    (spec,) = expand(load_experiment("toy2d-ablation"), tmp_path, overrides={
        "dataset": "ring8", "loss": "gan", "penalties": ["r1"], "lazy_interval": 1, "seeds": [0]})
    files.write_json(spec.run_dir / "summary.json", dict(status="failed", reason="killed"))
    assert select([spec], force=False) == [spec]
    assert run_state(spec.run_dir) == ("pending", 0.0)


def test_a_requeue_ignores_sigterm_so_scontrol_survives_the_requeues_own_signal():
    """submitit runs `scontrol requeue` right after TrainingJob.checkpoint; SLURM answers the requeue
    with SIGTERM to the whole step, and a scontrol killed by it marked the run failed. Ignored
    signals stay ignored in the child, so the checkpoint sets SIGTERM to SIG_IGN."""
    import signal

    import submitit

    from runners.job import TrainingJob

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        delayed = TrainingJob().checkpoint(["a spec"])
        assert isinstance(delayed, submitit.helpers.DelayedSubmission) and delayed.args == (["a spec"],)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_submitit_internals_that_runners_rely_on_are_where_submitit_compat_expects_them():
    import submitit
    import submitit.core.core as core
    import submitit.local.local as local

    from runners import submitit_compat

    assert submitit.__version__.startswith(submitit_compat.WRITTEN_FOR + "."), (
        f"submitit {submitit.__version__}: check runners/submitit_compat.py against its source")
    assert local.subprocess is __import__("subprocess") and core.Job._results_timeout_s == 15
