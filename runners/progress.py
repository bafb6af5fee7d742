"""What `r3bench run` shows while its jobs run: tqdm bars of runs and kimg, or plain tick lines read from metrics.jsonl."""
import json
import time
from pathlib import Path

from roadmap import files
from runners.run_folder import DONE_STATES, run_state


class _TickLines:
    """Progress as plain lines (stdout is a file or a pipe): each new tick of each run, and each finished run."""

    def __init__(self, specs):
        self.specs = specs
        self.offsets = {spec.run_dir: 0 for spec in specs}
        self.reported = set()

    def update(self, states) -> None:
        for spec, (state, _) in zip(self.specs, states):
            name = f"{spec.experiment}/{spec.name}"
            for row in self._new_rows(spec.run_dir):
                losses = " ".join(f"{key} {row[key]:.4g}" for key in ("loss_D", "loss_G") if isinstance(row.get(key), (int, float)))
                print(f"[{name}] kimg {row.get('kimg', 0):.1f} {losses}".rstrip(), flush=True)
            if state in DONE_STATES + ("failed",) and spec.run_dir not in self.reported:
                self.reported.add(spec.run_dir)
                print(f"[{name}] {state}{_outcome_words(spec.run_dir)}", flush=True)

    def _new_rows(self, run_dir) -> list:
        path = Path(run_dir) / "metrics.jsonl"
        try:
            size = path.stat().st_size
        except OSError:
            return []
        if size < self.offsets[run_dir]:  # rewritten on resume: start over
            self.offsets[run_dir] = 0
        with open(path, "rb") as stream:
            stream.seek(self.offsets[run_dir])
            chunk = stream.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self.offsets[run_dir] += len(complete)
        rows = []
        for line in complete.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows


def _outcome_words(run_dir) -> str:
    try:
        summary = files.read_json(Path(run_dir) / "summary.json")
    except (OSError, ValueError):
        return ""
    if summary.get("status") == "failed":
        return f": {str(summary.get('reason') or 'no reason recorded').splitlines()[0]}"
    metrics = summary.get("metrics") or {}
    shown = [f"{key} {value:.4g}" for key, value in metrics.items() if isinstance(value, (int, float))]
    kimg = summary.get("diverged_kimg") if summary.get("status") == "diverged" else summary.get("kimg")
    return f" at kimg {kimg:g}" * isinstance(kimg, (int, float)) + (": " + ", ".join(shown) if shown else "")


def wait(jobs, specs, progress: bool = True, poll_seconds: float = 1.0, lines: bool = False) -> None:
    """Block until every job ends, showing runs done and kimg trained (tqdm) or tick lines while they run."""
    total_kimg = sum(spec.config.duration_kimg for spec in specs)
    bars = None
    ticks = _TickLines(specs) if lines else None
    if progress:
        from tqdm import tqdm

        bars = (tqdm(total=len(specs), desc="runs", unit="run", position=0),
                tqdm(total=round(total_kimg, 1), desc="kimg", unit="kimg", position=1, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} kimg [{elapsed}<{remaining}]"))
    while True:
        finished = all(job.done() for job in jobs)
        states = [run_state(spec.run_dir) for spec in specs]
        if ticks is not None:
            ticks.update(states)
        if bars is not None:
            done = sum(state in DONE_STATES or state == "failed" for state, _ in states)
            kimg = sum(spec.config.duration_kimg if state in DONE_STATES + ("failed",) else kimg
                       for spec, (state, kimg) in zip(specs, states))
            bars[0].n, bars[1].n = done, round(min(kimg, total_kimg), 1)
            for bar in bars:
                bar.refresh()
        if finished:
            break
        time.sleep(poll_seconds)
    if bars is not None:
        for bar in bars:
            bar.close()
