"""On a fresh clone the README's main job trains: the committed evidence sits in results/reference/, apart from the user's results/ (issue 24)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_quick_on_a_fresh_clone_finds_every_run_pending(tmp_path):
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    assert (clone / "results" / "reference").is_dir()  # the evidence came along, apart from results/
    env = dict(os.environ, PYTHONPATH=str(clone))
    out = subprocess.run([sys.executable, "-m", "runners.cli", "run", "quick", "--dry-run"], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    runs = [line for line in out.stdout.splitlines() if line.strip().startswith("quick/")]
    assert len(runs) == 72 and all("[pending]" in line for line in runs)
    # and the reference evidence is still there to compare with: every one of those runs is completed in it
    reference = subprocess.run([sys.executable, "-m", "runners.cli", "run", "quick", "--dry-run", "--out", "results/reference"],
                               cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert sum("[completed]" in line for line in reference.stdout.splitlines()) == 72
