"""`r3bench list`, `run` and `status`: experiments from YAML to finished run folders (DESIGN.md)."""
import json
import os
import sys
import time
from pathlib import Path

from roadmap.errors import ConfigError

DEFAULT_RESULTS = "results"


def results_root(args) -> Path:
    return Path(args.out or os.environ.get("R3BENCH_RESULTS") or DEFAULT_RESULTS)


def register(subparsers) -> None:
    parser = subparsers.add_parser("list", help="configurations, presets, data sets and experiments")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_list)

    parser = subparsers.add_parser("run", help="run an experiment (bundled name or YAML path)")
    parser.add_argument("experiment", help="bundled experiment name (r3bench list) or a YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted-key overrides applied to every run")
    parser.add_argument("--executor", choices=("local", "debug", "slurm"), default=None, help="default: local")
    parser.add_argument("--out", default=None, help=f"results root (default: $R3BENCH_RESULTS or ./{DEFAULT_RESULTS})")
    parser.add_argument("--scale", "--preset", dest="scale", default=None,
                        help="the experiment's scale: cpu, gpu or paper (default: the file's default_scale); --preset is its old spelling")
    parser.add_argument("--dry-run", action="store_true", help="print the runs and resources, run nothing")
    parser.add_argument("--force", action="store_true", help="re-run from scratch: completed and diverged runs, and runs whose folder holds other settings")
    parser.add_argument("--max-parallel", type=int, default=None, help="local executor: runs at once")
    parser.add_argument("--no-progress", action="store_true", help="no live progress bars")
    parser.add_argument("--no-analyses", action="store_true", help="skip the experiment's analyses (e.g. the real-data ceiling row)")
    parser.set_defaults(handler=run_experiment)

    parser = subparsers.add_parser("status", help="state and progress of each run of an experiment")
    parser.add_argument("experiment")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--out", default=None)
    parser.add_argument("--scale", "--preset", dest="scale", default=None, help="as for run")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_status)


def run_list(args) -> int:
    from roadmap.presets import PRESETS
    from roadmap.losses import get_objective, list_objectives
    from roadmap.registry import dataset_kind, list_datasets, list_models, model_builder
    from runners.experiment import bundled_experiments, load_experiment

    models = {}
    for name in list_models():
        doc = (model_builder(name).__doc__ or "").strip().splitlines()
        models[name] = doc[0] if doc else ""
    experiments = {name: load_experiment(name).description for name in bundled_experiments()}
    losses = {name: get_objective(name).description for name in list_objectives()}
    datasets = {name: dataset_kind(name) for name in list_datasets()}
    listing = dict(configurations=models, losses=losses, presets=list(PRESETS), datasets=datasets, experiments=experiments)
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print("configurations (r3bench params --config NAME --preset P):")
    for name, line in models.items():
        print(f"  {name:<14} {line}")
    print("losses (loss=NAME):", ", ".join(f"{name} ({line})" for name, line in losses.items()))
    print("presets (Table 9):", ", ".join(PRESETS))
    print("data sets:", ", ".join(f"{name} ({kind})" for name, kind in datasets.items()))
    print("experiments (r3bench run NAME):")
    width = max(map(len, experiments), default=0)
    for name, line in experiments.items():
        print(f"  {name:<{width}}  {line}")
    return 0


def _plan(args, check_data: bool = True):
    from runners.experiment import check_resources, expand, load_experiment, parse_overrides, resources_for
    from runners.launch import check_batches
    from runners.plan import check_micro_batches

    experiment = load_experiment(args.experiment)
    overrides = parse_overrides(args.overrides)
    resources = resources_for(experiment, args.scale)
    if getattr(args, "max_parallel", None) is not None:
        resources["max_parallel"] = args.max_parallel
    check_resources(resources)
    root = results_root(args)
    specs = expand(experiment, root, scale=args.scale, overrides=overrides, check_data=check_data)
    check_batches(specs, resources)
    check_micro_batches(specs, resources)
    return experiment, specs, resources, root


def check_output_root(root: Path) -> None:
    """--out must be a folder this process can write: one line naming it otherwise, before any job starts."""
    import tempfile

    from roadmap import files

    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out: {root} is a file, not a folder")
    try:
        files.make_dirs(root)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        raise ConfigError(f"--out: cannot write results under {root} ({error.strerror or error})") from None


def describe_state(spec) -> str:
    """A run's state as `run --dry-run` and `status` show it: honest about other settings and live writers."""
    from runners import lock
    from runners.run_folder import run_state, settings_difference, state_words
    from roadmap.config import to_dict

    state = run_state(spec.run_dir)[0]
    record = lock.holder(spec.run_dir)
    if record is not None:
        return f"running ({lock.describe(record)})"
    if settings_difference(to_dict(spec.config), spec.run_dir):
        return f"{state_words(state)} with other settings"
    if state == "running":
        return "interrupted"
    return state


def _plan_key(config) -> str:
    import json

    return json.dumps([config.model, config.model_args, config.batch, config.batch_gpu, config.batch_gpu_G, config.loss,
                       config.penalties, config.device], sort_keys=True, default=str)


def run_experiment(args) -> int:
    from runners.experiment import analyses_of
    from runners.launch import launch, preflight
    from runners.run_folder import run_state
    from runners.summary import print_summary

    experiment, specs, resources, root = _plan(args)
    executor = args.executor or "local"
    if args.dry_run:
        print(f"experiment {experiment.name}: {len(specs)} runs, executor {executor}, resources {resources}")
        from runners.plan import rank_plan

        plans = {}  # one estimate per distinct network and batch (seeds share it)
        for spec in specs:
            state = describe_state(spec)
            c = spec.config
            print(f"  {spec.experiment}/{spec.name}  [{state}]  model={c.model} dataset={c.dataset} "
                  f"loss={c.loss} penalties={c.penalties} lazy={c.lazy_interval} kimg={c.duration_kimg:g} batch={c.batch} device={c.device}")
            print(f"    {plans.setdefault(_plan_key(c), rank_plan(c, resources))}")
        for name, options, folder in analyses_of(experiment, root):
            print(f"  analysis {name} {options} -> {folder}")
        try:  # a plan may be made here for another machine (a paper scale for SLURM): said, not refused
            preflight(specs, executor, resources)
        except ConfigError as error:
            print(f"note: run here with --executor {executor}, this would stop before any folder is written: {error}")
        return 0
    preflight(specs, executor, resources)  # CUDA, threads: before any folder is written
    check_output_root(root)
    from roadmap.outcome import git_commit

    started, commit = time.time(), git_commit()  # the code the runs start from (a commit landing meanwhile changes nothing)
    for name, options, folder in ([] if args.no_analyses else analyses_of(experiment, root)):
        _run_analysis(name, options, folder, [spec for spec in specs if spec.run_dir.parent == folder.parent])
    outcome = launch(specs, executor, resources, root, force=args.force, progress=not args.no_progress and sys.stderr.isatty(),
                     lines=not sys.stdout.isatty())
    if outcome["skipped"]:
        print(f"{outcome['skipped']} runs already finished (use --force to re-run them)")
    for note in outcome.get("notes", []):
        print(note)
    for problem in outcome["problems"]:
        print(f"warning: {problem}", file=sys.stderr)
    trained = len(specs) - outcome["skipped"]
    if trained > 0:  # the wall time of this invocation, beside its runs; a call that trained nothing keeps the last record
        from runners.record import write_experiment_record

        write_experiment_record(root / experiment.name, experiment.name, args.scale or experiment.default_scale, executor,
                                started, time.time(), len(specs), trained, resources.get("max_parallel"), commit)
    print_summary(specs)
    for spec in specs:  # why each failed run failed, one line each
        if run_state(spec.run_dir)[0] == "failed":
            reason = _failure_reason(spec.run_dir)
            print(f"failed: {spec.experiment}/{spec.name}: {reason}", file=sys.stderr)
    states = [run_state(spec.run_dir)[0] for spec in specs]
    # pending: skipped because another `r3bench run` holds it and has not started it yet (not finished here)
    return 1 if outcome["problems"] or {"failed", "running", "pending"} & set(states) else 0


def _run_analysis(name: str, options: dict, folder: Path, specs) -> None:
    """Analyses run in this process before the jobs; their results land in `folder`."""
    from roadmap import files

    if name == "dirac":
        from toy2d.commands import write_analysis

        write_analysis(options["gamma"], folder)
        print(f"dirac analysis (gamma {options['gamma']:g}) -> {folder}")
    elif name == "stackedmnist_real":
        from stackedmnist.commands import score_real

        resolutions = {spec.config.dataset_args.get("resolution", 32) for spec in specs if spec.config.dataset == "stackedmnist"}
        if len(resolutions) != 1:
            raise ConfigError(f"analyses.stackedmnist_real: the runs use resolutions {sorted(resolutions)}, expected one")
        resolution = resolutions.pop()
        path = folder / "eval.json"
        if path.exists() and files.read_json(path).get("resolution") == resolution:
            return  # the ceiling row is deterministic: computed once
        roots = {spec.config.dataset_args.get("root") for spec in specs}
        result = dict(score_real(options["n"], resolution, roots.pop() if len(roots) == 1 else None), resolution=resolution)
        files.write_json(path, result)
        print(f"real Stacked MNIST at {resolution} px: {result['modes']} modes, KL {result['kl']:.4f} -> {path}")


def run_status(args) -> int:
    from runners import lock
    from runners.run_folder import run_state

    _, specs, _, _ = _plan(args, check_data=False)  # reading run folders needs no data root
    rows = []
    for spec in specs:
        state, kimg = run_state(spec.run_dir)
        job_id = _job_id(spec.run_dir)
        record = lock.holder(spec.run_dir)
        shown = describe_state(spec)
        rows.append(dict(run=f"{spec.experiment}/{spec.name}", state=shown.split(" (")[0], kimg=kimg,
                         duration_kimg=spec.config.duration_kimg, job_id=job_id,
                         writer=dict(pid=record["pid"], host=record["host"]) if record else None))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(row["run"]) for row in rows) if rows else 10
    print(f"{'run':<{width}}  {'state':<10} {'kimg':>14}  job")
    for row in rows:
        writer = f"  (pid {row['writer']['pid']} on host {row['writer']['host']})" if row["writer"] else ""
        print(f"{row['run']:<{width}}  {row['state']:<10} {row['kimg']:>6.1f}/{row['duration_kimg']:<7g}  {row['job_id'] or '-'}{writer}")
    counts = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 0


def _failure_reason(run_dir: Path) -> str:
    try:
        return str(json.loads((run_dir / "summary.json").read_text()).get("reason") or "no reason recorded").splitlines()[0]
    except (OSError, ValueError):
        return "summary.json unreadable"


def _job_id(run_dir: Path):
    path = run_dir / "job.json"
    if path.exists():
        try:
            return json.loads(path.read_text()).get("job_id")
        except (OSError, ValueError):
            return None
    return None
