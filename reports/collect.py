"""Read every run folder under a results directory into pandas (DESIGN.md, run-folder format).

A run folder is any folder holding config.yaml, at any depth; its experiment is the path from
the results directory to the folder's parent. One row per run (flattened config, status, final
metrics as `metric.*`, provenance) and one long table of ticks from metrics.jsonl. Whatever
cannot be read becomes a line in `problems` (path, reason) instead of an exception, so that a
report can always be written.
"""
import dataclasses
import math
import warnings
from pathlib import Path

import pandas as pd
import yaml

from roadmap import files

# Summary keys copied into the run row (the config's own `device` field becomes `device_requested`).
SUMMARY_KEYS = ("reason", "kimg", "diverged_kimg", "wall_seconds", "device", "git_commit", "config_hash", "torch", "fingerprint")


@dataclasses.dataclass
class Results:
    """Everything a report is built from."""

    results_dir: Path
    runs: pd.DataFrame  # one row per run folder
    ticks: pd.DataFrame  # one row per metrics.jsonl line: run_dir, experiment, run + the tick's keys
    problems: list  # [(path relative to results_dir, reason)]
    dirac: list  # dirac.json contents, each with an added "experiment" key
    real: dict  # experiment -> {"modes", "kl", "n"} from <experiment>/real/eval.json
    portrait_steps: int = 800  # integration steps of the DiracGAN phase portraits the report draws (tests draw coarse ones)
    reference: "Results | None" = None  # the committed evidence (results/reference), when the report shows it beside yours


def _flat_value(key: str, value):
    """Make a config value hashable and readable: penalties -> 'r1+r2', ramps -> '1->0.1'."""
    if key == "penalties" and isinstance(value, (list, tuple)):
        return "+".join(sorted(str(v) for v in value)) or "none"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return "->".join(f"{v:g}" for v in value)
        return "+".join(str(v) for v in value)
    return value


def flatten_config(config: dict, prefix: str = "") -> dict:
    """Nested config mapping -> {dotted key: hashable value}."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, name + "."))
        else:
            flat[name] = _flat_value(name, value)
    if not prefix and "device" in flat:
        flat["device_requested"] = flat.pop("device")
    return flat


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() or "."


def _why(error: BaseException) -> str:
    """'TypeName: message' on one line (a YAML parser's message spans several: its first line says what)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _read_run(run_dir: Path, root: Path, problems: list):
    """(row dict, tick rows) of one run folder, or (None, []) when its config is unreadable."""
    name = _relative(run_dir, root)
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        if not isinstance(config, dict):
            raise ValueError("config.yaml is not a mapping")
    except Exception as error:  # a broken run folder is reported, never fatal
        problems.append((name, f"config.yaml unreadable ({_why(error)})"))
        return None, []
    experiment = _relative(run_dir.parent, root) if run_dir != root else "."
    row = dict(flatten_config(config), run_dir=str(run_dir), experiment=experiment, run=run_dir.name)
    damaged = []
    try:
        with warnings.catch_warnings(record=True) as warned:  # listed below as a problem instead
            warnings.simplefilter("always")
            ticks = files.read_jsonl(run_dir / "metrics.jsonl", skipped=damaged)
    except Exception as error:
        problems.append((name, f"metrics.jsonl unreadable ({_why(error)})"))
        ticks, warned = [], []
    if damaged and (warned or not ticks):  # read_jsonl warns unless the one damaged line is the last: a killed writer's trace
        problems.append((name, f"metrics.jsonl: {len(damaged)} damaged line(s) skipped (line {damaged[0]} first)"))
    ticks = [dict(tick, run_dir=str(run_dir), experiment=experiment, run=run_dir.name) for tick in _checked_ticks(ticks, name, problems)]
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        row.update(status="running", kimg=ticks[-1].get("kimg") if ticks else 0.0)
    else:
        try:
            summary = files.read_json(summary_path)
            if not isinstance(summary, dict):
                raise ValueError("not a JSON object")
        except Exception as error:
            problems.append((name, f"summary.json unreadable ({_why(error)})"))
            row.update(status="unreadable", reason="summary.json unreadable")
        else:
            summary = _checked_summary(summary, name, problems)
            row["status"] = summary.get("status", "failed")
            row.update({key: summary.get(key) for key in SUMMARY_KEYS})
            for key, value in (summary.get("metrics") or {}).items():
                row[f"metric.{key}"] = value
            for key, value in (summary.get("stability") or {}).items():  # roadmap/stability.py, per run
                row[f"stability.{key}"] = value
    samples = run_dir / "samples"
    row["samples_png"] = str(samples / "final.png") if (samples / "final.png").exists() else None
    return row, ticks


NUMBER_KEYS = ("kimg", "diverged_kimg", "wall_seconds")
TEXT_KEYS = ("status", "reason", "device", "git_commit", "config_hash", "torch")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked_summary(summary: dict, name: str, problems: list) -> dict:
    """summary.json with each value of the wrong type left out, and named in `problems` (field and value)."""
    checked, bad = dict(summary), []
    for key in NUMBER_KEYS:
        if checked.get(key) is not None and not _is_number(checked[key]):
            bad.append(f"{key} is {checked.pop(key)!r} (expected a number)")
    for key in TEXT_KEYS:
        if checked.get(key) is not None and not isinstance(checked[key], str):
            bad.append(f"{key} is {checked.pop(key)!r} (expected text)")
    for part in ("metrics", "stability"):
        values = checked.get(part)
        if values is None:
            continue
        if not isinstance(values, dict):
            bad.append(f"{part} is {checked.pop(part)!r} (expected a mapping)")
            continue
        kept = {key: value for key, value in values.items() if value is None or isinstance(value, (int, float))}  # bools: flags
        bad += [f"{part}.{key} is {value!r} (expected a number)" for key, value in values.items() if key not in kept]
        checked[part] = kept
    if bad:
        problems.append((name, "summary.json: " + "; ".join(bad)))
    return checked


def _checked_ticks(ticks: list, name: str, problems: list) -> list:
    """Tick rows whose tick and kimg (when present) are numbers and other values numbers, text or null; the first bad row is named."""
    kept = []
    for number, tick in enumerate(ticks, 1):
        bad = next((key for key, value in tick.items()
                    if not (_is_number(value) if key in ("tick", "kimg") else value is None or isinstance(value, (int, float, str)))), None)
        if bad is None:
            kept.append(tick)
        elif len(kept) == number - 1:  # one line per run, for the first bad row
            problems.append((name, f"metrics.jsonl row {number}: {bad} is {tick[bad]!r}; rows like it are left out"))
    return kept


def _read_analyses(root: Path, problems: list, exclude=()) -> tuple:
    dirac, real = [], {}
    for path in sorted(p for p in root.rglob("dirac.json") if _outside(p, root, exclude)):
        experiment = _relative(path.parent.parent, root) if path.parent != root else "."
        try:
            content = files.read_json(path)
            for entry in content if isinstance(content, list) else [content]:
                if not isinstance(entry, dict) or "results" not in entry:
                    raise ValueError("expected {'gamma': G, 'results': [...]}")
                dirac.append(dict(entry, experiment=experiment))
        except Exception as error:
            problems.append((_relative(path, root), f"unreadable ({_why(error)})"))
    for path in sorted(p for p in root.rglob("real/eval.json") if _outside(p, root, exclude)):
        try:
            content = files.read_json(path)
            if not isinstance(content, dict):
                raise ValueError("not a JSON object")
            real[_relative(path.parent.parent, root) if path.parent != root else "."] = content
        except Exception as error:
            problems.append((_relative(path, root), f"unreadable ({_why(error)})"))
    return dirac, real


REFERENCE = "reference"  # results/reference: the committed evidence, kept apart from the user's runs (issue 24)


def _outside(path: Path, root: Path, excluded) -> bool:
    return not excluded or path.relative_to(root).parts[0] not in excluded


def collect(results_dir, exclude=()) -> Results:
    """Read every run folder and analysis under `results_dir` (which must exist), except under its top-level `exclude` folders."""
    root = Path(results_dir)
    problems, rows, ticks = [], [], []
    for config_path in sorted(p for p in root.rglob("config.yaml") if _outside(p, root, exclude)):
        row, run_ticks = _read_run(config_path.parent, root, problems)
        if row is not None:
            rows.append(row)
            ticks.extend(run_ticks)
    dirac, real = _read_analyses(root, problems, exclude)
    runs = pd.DataFrame(rows, columns=None if rows else ["run_dir", "experiment", "run", "status"])
    for column in ("seed", "loss", "penalties", "lazy_interval", "model", "dataset", "reason", "kimg", "wall_seconds",
                   "device", "git_commit", "config_hash", "diverged_kimg", "feeds", "fingerprint"):
        if column not in runs:
            runs[column] = None
    tick_frame = pd.DataFrame(ticks, columns=None if ticks else ["run_dir", "experiment", "run", "tick", "kimg"])
    return Results(root, runs, tick_frame, problems, dirac, real)


def metric_values(runs: pd.DataFrame, key: str) -> list:
    """Finite-or-inf float values of metric `key` in `runs` (None/NaN dropped); `key` names a summary metric
    ("kl": column metric.kl) or a column of another summary section ("stability.final_drift")."""
    column = key if key.startswith(("metric.", "stability.")) else f"metric.{key}"
    if column not in runs:
        return []
    values = []
    for value in runs[column]:
        if value is None or isinstance(value, bool):
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isnan(value):
            values.append(value)
    return values


def experiment_wall_times(results: Results, feeds: str) -> list:
    """One line per top-level experiment folder whose runs feed `feeds`: the wall time its `r3bench run`
    recorded in experiment.json (runners/record.py); none for folders without a record."""
    from runners.record import wall_time_line

    if results.runs.empty or "feeds" not in results.runs:
        return []
    chosen = results.runs.loc[results.runs["feeds"] == feeds, "experiment"]
    folders = sorted({str(name).split("/")[0] for name in chosen})
    return [line for line in (wall_time_line(Path(results.results_dir) / folder) for folder in folders) if line]

