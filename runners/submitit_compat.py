"""Where r3bench relies on submitit's internals, and on the words of its messages: all of it here.

Written against submitit 1.5.4 (the 1.5 series; pyproject.toml does not pin it). On another version,
check the three places below against submitit's source: `submitit.local.local.subprocess` (the module
whose Popen starts the local controllers), `core.Job._results_timeout_s` (the wait for a missing
result file) and the "has not produced any output" message of `core.Job.results`;
tests/runners/test_launch.py checks that the first two still exist.
"""
import subprocess
import sys
from pathlib import Path

from roadmap import files

WRITTEN_FOR = "1.5"  # the submitit series these internals were read from


class QuietControllers:
    """Start submitit's local controllers with their output in `<folder>/controllers.log`.

    A controller shares the terminal of `r3bench run`: on Ctrl-C it would print its own
    KeyboardInterrupt traceback beside our one line. The tasks have their own log files already.
    submitit offers no option for this, so its module's `subprocess` is swapped for one whose
    Popen sends a controller's output to the log, for as long as this context lasts.
    """

    def __init__(self, folder):
        self.folder = Path(folder)

    def __enter__(self):
        import submitit.local.local as local

        self.module, self.real = local.subprocess, local.subprocess.Popen
        files.make_dirs(self.folder)
        log = open(self.folder / "controllers.log", "a")
        real = self.real

        class Popen(real):
            def __init__(self, command, *args, **kwargs):
                if "submitit.local._local" in str(command):
                    kwargs.setdefault("stdout", log)
                    kwargs.setdefault("stderr", log)
                super().__init__(command, *args, **kwargs)

        self.log = log
        local.subprocess = type(sys)("subprocess_for_submitit")
        local.subprocess.__dict__.update(subprocess.__dict__)
        local.subprocess.Popen = Popen
        return self

    def __exit__(self, *exc):
        import submitit.local.local as local

        local.subprocess = self.module
        self.log.close()


def set_results_timeout(jobs, seconds: float) -> None:
    """How long each job and its tasks wait for a missing result file (submitit waits 15 s, for shared file
    systems; a local job's files are local)."""
    for job in jobs:
        for task in [job, *job._sub_jobs]:
            task._results_timeout_s = seconds


def no_output(error: BaseException) -> bool:
    """Whether `job.results()` failed because the job left no result at all (killed without a Python error)."""
    return "has not produced any output" in str(error)
