"""Experiment files (YAML) -> validated run specs: the grid config x loss x data set x seed (DESIGN.md data flow).

Schema (every key optional except `base`; unknown keys are rejected with the closest valid one):

    description: one line shown by `r3bench list`
    feeds: table1        # the paper table or section its runs feed; recorded in every run's config.yaml
    base: {RunConfig fields, dotted keys allowed: model_args.width: 0.125}
    grid: {RunConfig field: [value, ...]}      # cartesian product, in the order written
    seeds: [0, 1, 2]
    presets: {cpu: {overrides of base}, paper: {..., resources: {gpus_per_node: 1}}}
    default_preset: cpu
    resources: {timeout_min: 60, cpus_per_task: 1, gpus_per_node: 0, mem_gb: 8, ...}
    include: [other bundled experiments; their runs land in <this>/<included>/]
    analyses: {dirac: {gamma: 1.0}}          # or a list of names with default arguments

Precedence for one run: RunConfig defaults < Table 9 preset row (`preset:`) < base < the
experiment preset (cpu/paper) < grid values and seed < command-line overrides.
"""
import dataclasses
import itertools
import re
from pathlib import Path
from typing import Optional

import yaml

from roadmap.config import FIELDS, RunConfig, merge, resolve
from roadmap.errors import ConfigError, closest, unknown

BUNDLED = Path(__file__).resolve().parent / "experiments"
TOP_LEVEL_KEYS = ("description", "feeds", "base", "grid", "seeds", "presets", "default_preset", "resources", "include", "analyses")
# In-process analyses and their default arguments. stackedmnist_real scores real samples at the
# resolution of the experiment's own runs (the ceiling row of Tables 1 and 3).
ANALYSES = {"dirac": dict(gamma=1.0), "stackedmnist_real": dict(n=26_000)}
ANALYSIS_FOLDERS = {"stackedmnist_real": "real"}  # where reports/ looks for each analysis
RESOURCE_KEYS = {
    "timeout_min": int,  # wall-clock limit per job (submitit's local default of 2 minutes is never used)
    "cpus_per_task": int,
    "gpus_per_node": int,
    "tasks_per_node": int,  # > 1: DDP, one rank per task (and GPU)
    "nodes": int,
    "mem_gb": (int, float),
    "partition": str,
    "account": str,
    "qos": str,
    "constraint": str,
    "array_parallelism": int,  # at most this many array tasks at once on SLURM
    "max_parallel": int,  # local executor: runs at once (default: cores / cpus_per_task)
}


@dataclasses.dataclass
class RunSpec:
    """One run: where it goes and its fully resolved configuration."""

    experiment: str  # experiment path below the results root, e.g. quick/toy2d-ablation
    name: str  # run folder name, built from the grid values and the seed
    config: RunConfig
    run_dir: Path


@dataclasses.dataclass
class Experiment:
    name: str
    source: Path
    description: str = ""
    base: dict = dataclasses.field(default_factory=dict)
    grid: dict = dataclasses.field(default_factory=dict)
    seeds: list = dataclasses.field(default_factory=lambda: [0])
    presets: dict = dataclasses.field(default_factory=dict)
    default_preset: Optional[str] = None
    resources: dict = dataclasses.field(default_factory=dict)
    include: list = dataclasses.field(default_factory=list)
    analyses: dict = dataclasses.field(default_factory=dict)
    feeds: Optional[str] = None  # paper table or section (reports select runs by it); None: the report lists them as unclaimed


def bundled_experiments() -> list[str]:
    return sorted(path.stem for path in BUNDLED.glob("*.yaml"))


def _find(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"experiment file {name_or_path!r} does not exist")
        return path
    bundled = BUNDLED / f"{name_or_path}.yaml"
    if not bundled.exists():
        raise unknown("experiment", name_or_path, bundled_experiments())
    return bundled


def load_experiment(name_or_path: str) -> Experiment:
    """Read and check an experiment file (bundled name or path); raise ConfigError naming the field."""
    path = _find(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"{path.name}:{where} malformed YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping with a `base` section, got {type(raw).__name__}")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path.name}: unknown key {key!r}{closest(key, TOP_LEVEL_KEYS)}")
    experiment = Experiment(name=path.stem, source=path, **{k: v for k, v in raw.items() if v is not None})
    _check_types(experiment, path.name)
    return experiment


def _check_types(experiment: Experiment, where: str) -> None:
    if experiment.feeds is not None and not isinstance(experiment.feeds, str):
        raise ConfigError(f"{where}: feeds: expected the name of a paper table or section, got {experiment.feeds!r}")
    for key, kind in (("base", dict), ("grid", dict), ("presets", dict), ("resources", dict), ("seeds", list), ("include", list)):
        if not isinstance(getattr(experiment, key), kind):
            raise ConfigError(f"{where}: {key}: expected a {kind.__name__}, got {getattr(experiment, key)!r}")
    for key, values in experiment.grid.items():
        if key.split(".")[0] not in FIELDS:
            raise ConfigError(f"{where}: grid: unknown key {key!r}{closest(key.split('.')[0], FIELDS)}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key}: expected a non-empty list of values, got {values!r}")
    for seed in experiment.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"{where}: seeds: expected integers >= 0, got {seed!r}")
    if experiment.default_preset is not None and experiment.default_preset not in experiment.presets:
        raise unknown(f"default_preset in {where}:", experiment.default_preset, experiment.presets)
    for name, values in experiment.presets.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: presets.{name}: expected a mapping of overrides")
        if not isinstance(values.get("resources", {}), dict):
            raise ConfigError(f"{where}: presets.{name}.resources: expected a mapping")
        check_resources(values.get("resources", {}), f"{where}: presets.{name}")
    check_resources(experiment.resources, where)
    if isinstance(experiment.analyses, list):
        experiment.analyses = {name: {} for name in experiment.analyses}
    for name, options in experiment.analyses.items():
        if name not in ANALYSES:
            raise unknown(f"analysis in {where}:", name, ANALYSES)
        for option in options or {}:
            if option not in ANALYSES[name]:
                raise ConfigError(f"{where}: analyses.{name}: unknown option {option!r}{closest(option, ANALYSES[name])}")


def resources_for(experiment: Experiment, preset: Optional[str] = None) -> dict:
    """The experiment's resources with the chosen preset's `resources` on top (e.g. GPUs for `paper`)."""
    chosen = preset if preset is not None else experiment.default_preset
    return dict(experiment.resources, **experiment.presets.get(chosen, {}).get("resources", {}))


def check_resources(resources: dict, where: str = "resources") -> None:
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"{where}: resources: unknown key {key!r}{closest(key, RESOURCE_KEYS)}")
        kind = RESOURCE_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(f"{where}: resources.{key}: expected {getattr(kind, '__name__', 'a number')}, got {value!r}")
        if kind is not str and value < (0 if key == "gpus_per_node" else 1):
            raise ConfigError(f"{where}: resources.{key}: must be >= {0 if key == 'gpus_per_node' else 1}, got {value!r}")


def _format(value) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_format(v) for v in value) or "none"
    if isinstance(value, dict):
        return "+".join(f"{k}{_format(v)}" for k, v in value.items())
    return re.sub(r"[^A-Za-z0-9.+-]", "", str(value))


def run_name(grid_values: dict, seed: int) -> str:
    """Folder name of a run: grid values in grid order, then the seed (e.g. ring8_rpgan_r1+r2_lazy1_seed0)."""
    parts = []
    for key, value in grid_values.items():
        leaf = key.split(".")[-1]
        text = _format(value)
        parts.append(f"lazy{text}" if leaf == "lazy_interval" else text if leaf in ("loss", "penalties", "dataset", "model") else f"{leaf}{text}")
    return "_".join(parts + [f"seed{seed}"])


def parse_overrides(items) -> dict:
    """['a.b=1', 'loss=gan'] -> {'a.b': 1, 'loss': 'gan'} (values parsed as YAML)."""
    overrides = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, text = item.split("=", 1)
        try:
            overrides[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"override {key}: cannot parse value {text!r}") from None
    return overrides


def expand(experiment: Experiment, results_root, preset: Optional[str] = None, overrides: Optional[dict] = None,
           prefix: str = "") -> list[RunSpec]:
    """Every run of the experiment (and of its includes), resolved and validated; nothing is written."""
    original_overrides = dict(overrides or {})
    overrides = dict(original_overrides)
    chosen = preset if preset is not None else experiment.default_preset
    if chosen is not None and chosen not in experiment.presets:
        if preset is not None and not prefix:  # the user's choice must exist at the top level
            raise unknown(f"preset of experiment {experiment.name!r}:", chosen, experiment.presets)
        chosen = experiment.default_preset
    grid = dict(experiment.grid)
    seeds = list(experiment.seeds)  # empty: the experiment only gathers its includes
    if "seeds" in overrides and seeds:
        seeds = overrides.pop("seeds")
        seeds = seeds if isinstance(seeds, list) else [seeds]
    overrides.pop("seeds", None)
    base_overrides = {}
    for key, value in overrides.items():
        if key in grid:
            grid[key] = [value]  # fixing a grid axis on the command line keeps it in run names
        else:
            base_overrides[key] = value
    preset_values = {k: v for k, v in experiment.presets.get(chosen, {}).items() if k != "resources"} if chosen else {}
    base = merge(experiment.base, preset_values)
    if experiment.feeds is not None:
        base.setdefault("feeds", experiment.feeds)
    where = f"{prefix}{experiment.name}"
    specs = []
    for combination in itertools.product(*grid.values()):
        grid_values = dict(zip(grid.keys(), combination))
        for seed in seeds:
            values = merge(merge(base, dict(grid_values, seed=seed)), base_overrides)
            try:
                config = resolve(values)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
            name = run_name(grid_values, seed)
            specs.append(RunSpec(where, name, config, Path(results_root) / where / name))
    for included in experiment.include:
        child = load_experiment(included)
        specs += expand(child, results_root, preset, original_overrides, prefix=f"{where}/")
    _check_models_and_data(specs)
    names = [spec.run_dir for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two runs share a folder name; give every varying key a grid axis")
    return specs


def _check_models_and_data(specs) -> None:
    """Unknown configuration or data-set names fail here, before any job starts."""
    from roadmap.registry import check_dataset, list_models

    models, checked = list_models(), set()
    for spec in specs:
        if spec.config.model not in models:
            raise ConfigError(f"{spec.experiment}: {unknown('configuration', spec.config.model, models)}")
        key = (spec.config.dataset, repr(sorted(spec.config.dataset_args.items())))
        if key not in checked:
            checked.add(key)
            try:
                check_dataset(spec.config.dataset, **spec.config.dataset_args)
            except ConfigError as error:
                raise ConfigError(f"{spec.experiment}: {error}") from None
            except TypeError as error:  # an option the data set does not take
                raise ConfigError(f"{spec.experiment}: dataset_args: {error}") from None


def analyses_of(experiment: Experiment, results_root, prefix: str = "") -> list[tuple]:
    """(name, options, output folder) for the experiment's analyses and its includes'."""
    where = f"{prefix}{experiment.name}"
    found = [(name, dict(ANALYSES[name], **(options or {})), Path(results_root) / where / ANALYSIS_FOLDERS.get(name, name))
             for name, options in experiment.analyses.items()]
    for included in experiment.include:
        found += analyses_of(load_experiment(included), results_root, prefix=f"{where}/")
    return found
