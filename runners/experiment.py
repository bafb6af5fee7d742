"""Experiment files (YAML) -> validated run specs: the grid config x loss x data set x seed (DESIGN.md data flow).

Schema (every key optional except `base`; unknown keys are rejected with the closest valid one):

    description: one line shown by `r3bench list`
    feeds: table1        # the paper table or section its runs feed; recorded in every run's config.yaml
    base: {RunConfig fields, dotted keys allowed: model_args.width: 0.125}
    grid: {RunConfig field: [value, ...]}      # cartesian product, in the order written
    seeds: [0, 1, 2]
    scales: {cpu: {overrides of base}, paper: {..., resources: {gpus_per_node: 1}}}
    default_scale: cpu   # `r3bench run NAME --scale paper` (or its old spelling --preset) picks another
    resources: {timeout_min: 60, cpus_per_task: 1, gpus_per_node: 0, mem_gb: 8, ...}
    include: [other bundled experiments; their runs land in <this>/<included>/]
    analyses: {dirac: {gamma: 1.0}}          # or a list of names with default arguments
    extends: _stackedmnist_cpu   # a bundled fragment (or path) whose base/scales/resources/analyses lie under this file's

Files whose name starts with `_` are fragments for `extends:`, not experiments (`r3bench list` skips them).

Words: a *scale* is one of the experiment's variants (cpu, gpu, paper); a *preset* is a Table 9 column
(RunConfig.preset, inherited by the builders and image data sets). Files written before issue 21 call
scales `presets:` / `default_preset:`; those keys are still read.

Precedence for one run: RunConfig defaults < Table 9 preset row (`preset:`) < base < the
experiment's scale (cpu/paper) < grid values and seed < command-line overrides.
"""
import dataclasses
import itertools
import re
from pathlib import Path
from typing import Optional

import yaml

from roadmap.config import FIELDS, MAX_SEED, RunConfig, load_yaml, merge, resolve
from roadmap.errors import ConfigError, check_int, check_number, closest, unknown

BUNDLED = Path(__file__).resolve().parent / "experiments"
TOP_LEVEL_KEYS = ("description", "feeds", "base", "grid", "seeds", "scales", "default_scale", "resources", "include", "analyses",
                  "extends")
LEGACY_KEYS = {"presets": "scales", "default_preset": "default_scale"}  # issue 21 renamed them; user files keep working
MERGED_KEYS = ("base", "scales", "resources", "analyses")  # extends: the parent's mapping lies under the file's own
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
    "gpu_mem_gb": (int, float),  # memory of one GPU, for the dry run's default micro-batch (the job measures its own GPU); default 80
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
    scales: dict = dataclasses.field(default_factory=dict)  # variant name (cpu, gpu, paper) -> overrides of base, with its own resources
    default_scale: Optional[str] = None  # the variant run when the command line names none
    resources: dict = dataclasses.field(default_factory=dict)
    include: list = dataclasses.field(default_factory=list)
    analyses: dict = dataclasses.field(default_factory=dict)
    feeds: Optional[str] = None  # paper table or section (reports select runs by it); None: the report lists them as unclaimed


def bundled_experiments() -> list[str]:
    return sorted(path.stem for path in BUNDLED.glob("*.yaml") if not path.stem.startswith("_"))


def _find(name_or_path, kind: str = "experiment") -> Path:
    if not isinstance(name_or_path, str):
        raise ConfigError(f"{kind}: expected the name or path of an experiment file, got {name_or_path!r}")
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if path.is_dir():
            raise ConfigError(f"{kind} file {name_or_path!r} is a folder, not a YAML file")
        if not path.is_file():
            raise ConfigError(f"{kind} file {name_or_path!r} does not exist")
        return path
    bundled = BUNDLED / f"{name_or_path}.yaml"
    if not bundled.exists():
        raise unknown(kind, name_or_path, bundled_experiments())
    return bundled


def _read_raw(path: Path, chain: tuple) -> dict:
    """The file's top-level mapping, with an `extends:` parent merged under it (cycles refused)."""
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not a text (UTF-8) file") from None
    except ConfigError as error:  # a duplicate key
        raise ConfigError(f"{path.name}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"{path.name}:{where} malformed YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping with a `base` section, got {type(raw).__name__}")
    for old, new in LEGACY_KEYS.items():
        if old in raw and new in raw:
            raise ConfigError(f"{path.name}: {old} and {new} are one setting (the old and the new name); keep {new}")
    default = raw.get("default_scale", raw.get("default_preset"))
    if default is not None and not isinstance(default, str):  # named in the file's own words
        key, noun = ("default_preset", "preset") if "default_preset" in raw else ("default_scale", "scale")
        raise ConfigError(f"{path.name}: {key}: expected a {noun} name, got {default!r}")
    for old, new in LEGACY_KEYS.items():
        if old in raw:
            raw[new] = raw.pop(old)
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path.name}: unknown key {key!r}{closest(key, TOP_LEVEL_KEYS)}")
    parent_name = raw.pop("extends", None)
    if parent_name is None:
        return raw
    parent_path = _find(parent_name, f"{path.name}: extends")
    if parent_path.resolve() in chain:
        raise ConfigError(f"{path.name}: extends: {parent_name!r} extends this file again (a cycle)")
    parent = _read_raw(parent_path, chain + (parent_path.resolve(),))
    for key in MERGED_KEYS:
        if key in parent and key in raw:
            for name, value in (("parent", parent[key]), ("file", raw[key])):
                if not isinstance(value, (dict, type(None))):
                    raise ConfigError(f"{path.name if name == 'file' else parent_path.name}: {key}: expected a mapping, got {value!r}")
            raw[key] = merge(parent[key] or {}, raw[key] or {})
    return dict(parent, **raw)


def load_experiment(name_or_path: str, _chain: tuple = ()) -> Experiment:
    """Read and check an experiment file (bundled name or path) and its includes; raise ConfigError naming the field."""
    path = _find(name_or_path)
    raw = _read_raw(path, (path.resolve(),))
    experiment = Experiment(name=path.stem, source=path, **{k: v for k, v in raw.items() if v is not None})
    _check_types(experiment, path.name)
    chain = _chain + (path.resolve(),)
    for included in experiment.include:  # load the whole include tree now: a cycle would recurse forever later
        if not isinstance(included, str):
            raise ConfigError(f"{path.name}: include: expected names of experiments, got {included!r}")
        if _find(included).resolve() in chain:
            raise ConfigError(f"{path.name}: include: {included!r} includes itself (directly or through another file)")
        load_experiment(included, chain)
    return experiment


def _check_types(experiment: Experiment, where: str) -> None:
    if experiment.feeds is not None and not isinstance(experiment.feeds, str):
        raise ConfigError(f"{where}: feeds: expected the name of a paper table or section, got {experiment.feeds!r}")
    for key, kind in (("base", dict), ("grid", dict), ("scales", dict), ("resources", dict), ("seeds", list), ("include", list)):
        if not isinstance(getattr(experiment, key), kind):
            raise ConfigError(f"{where}: {key}: expected a {kind.__name__}, got {getattr(experiment, key)!r}")
    for key, values in experiment.grid.items():
        if key == "seed":  # run names end in _seed<N> already; the grid value would be overwritten by the seeds loop
            raise ConfigError(f"{where}: grid.seed: seeds are not a grid axis; list them under `seeds:` (e.g. seeds: {values!r})")
        if key.split(".")[0] not in FIELDS:
            raise ConfigError(f"{where}: grid: unknown key {key!r}{closest(key.split('.')[0], FIELDS)}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid.{key}: expected a non-empty list of values, got {values!r}")
    for seed in experiment.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"{where}: seeds: expected integers >= 0 and < 2**63, got {seed!r}")
    if not experiment.seeds and not experiment.include:
        raise ConfigError(f"{where}: seeds: the list is empty and nothing is included, so there is no run to do")
    for section in ("base",) + tuple(f"scales.{name}" for name in experiment.scales):
        values = experiment.base if section == "base" else experiment.scales[section.split(".", 1)[1]]
        if isinstance(values, dict) and "seed" in values:
            raise ConfigError(f"{where}: {section}.seed: set seeds with the top-level `seeds:` list")
    if experiment.default_scale is not None and experiment.default_scale not in experiment.scales:
        raise unknown(f"default_scale in {where}:", experiment.default_scale, experiment.scales)
    for name, values in experiment.scales.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: scales.{name}: expected a mapping of overrides")
        if not isinstance(values.get("resources", {}), dict):
            raise ConfigError(f"{where}: scales.{name}.resources: expected a mapping")
        check_resources(values.get("resources", {}), f"{where}: scales.{name}")
    check_resources(experiment.resources, where)
    if isinstance(experiment.analyses, list):
        if not all(isinstance(name, str) for name in experiment.analyses):
            raise ConfigError(f"{where}: analyses: expected analysis names, got {experiment.analyses!r}")
        experiment.analyses = {name: {} for name in experiment.analyses}
    if not isinstance(experiment.analyses, dict):
        raise ConfigError(f"{where}: analyses: expected a mapping or a list of names, got {experiment.analyses!r}")
    for name, options in experiment.analyses.items():
        if name not in ANALYSES:
            raise unknown(f"analysis in {where}:", name, ANALYSES)
        if not isinstance(options, (dict, type(None))):
            raise ConfigError(f"{where}: analyses.{name}: expected a mapping of options, got {options!r}")
        for option, value in (options or {}).items():
            if option not in ANALYSES[name]:
                raise ConfigError(f"{where}: analyses.{name}: unknown option {option!r}{closest(option, ANALYSES[name])}")
            if option == "gamma":
                check_number(f"{where}: analyses.{name}.gamma", value, 0.0)
            if option == "n":
                check_int(f"{where}: analyses.{name}.n", value, 1)


def resources_for(experiment: Experiment, scale: Optional[str] = None) -> dict:
    """The experiment's resources with the chosen scale's `resources` on top (e.g. GPUs for `paper`)."""
    chosen = scale if scale is not None else experiment.default_scale
    return dict(experiment.resources, **experiment.scales.get(chosen, {}).get("resources", {}))


def check_resources(resources: dict, where: str = "resources") -> None:
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"{where}: resources: unknown key {key!r}{closest(key, RESOURCE_KEYS)}")
        kind = RESOURCE_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(f"{where}: resources.{key}: expected {getattr(kind, '__name__', 'a number')}, got {value!r}")
        if kind is not str:
            check_number(f"{where}: resources.{key}", value, 0 if key == "gpus_per_node" else 1)


def _format(value) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_format(v) for v in value) or "none"
    if isinstance(value, dict):
        return "+".join(f"{k}{_format(v)}" for k, v in value.items())
    return re.sub(r"[^A-Za-z0-9._+-]", "", str(value))  # `_` stays: configuration names such as E_R1 or small_resnet


def run_name(grid_values: dict, seed: int) -> str:
    """Folder name of a run: grid values in grid order, then the seed (e.g. ring8_rpgan_r1+r2_lazy1_seed0)."""
    parts = []
    for key, value in grid_values.items():
        leaf = key.split(".")[-1]
        text = _format(value)
        parts.append(f"lazy{text}" if leaf == "lazy_interval" else text if leaf in ("loss", "penalties", "dataset", "model") else f"{leaf}{text}")
    return "_".join(parts + [f"seed{seed}"])


def parse_overrides(items) -> dict:
    """['a.b=1', 'loss=gan', 'lr=1e-3'] -> {'a.b': 1, 'loss': 'gan', 'lr': 0.001} (values parsed as YAML;
    1e-3 is a number here although YAML 1.1 reads it as a string)."""
    overrides = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, text = item.split("=", 1)
        try:
            overrides[key.strip()] = load_yaml(text)
        except (yaml.YAMLError, ConfigError):
            raise ConfigError(f"override {key}: cannot parse value {text!r}") from None
        if key.strip() == "seed":
            raise ConfigError(f"override seed: every run would get this seed under its own seed<N> name; use seeds=[{text}]")
    return overrides


def expand(experiment: Experiment, results_root, scale: Optional[str] = None, overrides: Optional[dict] = None,
           prefix: str = "", check_data: bool = True) -> list[RunSpec]:
    """Every run of the experiment (and of its includes), resolved and validated; nothing is written.

    `check_data=False` skips the data sets' own checks (roots that exist, ...): for reading run
    folders (`r3bench status`), which needs no data."""
    original_overrides = dict(overrides or {})
    overrides = dict(original_overrides)
    chosen = scale if scale is not None else experiment.default_scale
    if chosen is not None and chosen not in experiment.scales:
        if scale is not None and not prefix:  # the user's choice must exist at the top level (asked with --preset, its old spelling, or --scale)
            raise unknown(f"preset of experiment {experiment.name!r} (scale):", chosen, experiment.scales)
        chosen = experiment.default_scale
    grid = dict(experiment.grid)
    seeds = list(experiment.seeds)  # empty: the experiment only gathers its includes
    if "seeds" in overrides and seeds:
        seeds = overrides.pop("seeds")
        seeds = seeds if isinstance(seeds, list) else [seeds]
        if not seeds:
            raise ConfigError(f"{prefix}{experiment.name}: seeds: an empty list leaves no run to do")
    overrides.pop("seeds", None)
    base_overrides = {}
    for key, value in overrides.items():
        if key in grid:
            grid[key] = [value]  # fixing a grid axis on the command line keeps it in run names
        else:
            base_overrides[key] = value
    scale_values = {k: v for k, v in experiment.scales.get(chosen, {}).items() if k != "resources"} if chosen else {}
    base = merge(experiment.base, scale_values)
    if experiment.feeds is not None:
        base.setdefault("feeds", experiment.feeds)
    where = f"{prefix}{experiment.name}"
    specs = []
    # Seed-major: every grid cell of the first seed, then of the next. An experiment cut short (a session's end, a
    # budget) then leaves whole seeds, each a pair for the paired verdicts, not one arm's five seeds (issue 25).
    for seed in seeds:
        for combination in itertools.product(*grid.values()):
            grid_values = dict(zip(grid.keys(), combination))
            values = merge(merge(base, dict(grid_values, seed=seed)), base_overrides)
            try:
                config = resolve(values)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
            name = run_name(grid_values, seed)
            specs.append(RunSpec(where, name, config, Path(results_root) / where / name))
    for included in experiment.include:
        child = load_experiment(included)
        specs += expand(child, results_root, scale, original_overrides, prefix=f"{where}/")  # checked below, once, at the top
    if not prefix:
        _check_models_and_data(specs, check_data)
    names = [spec.run_dir for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two runs share a folder name; give every varying key a grid axis")
    return specs


def build_on_meta(name: str, model_args: dict):
    """Build configuration `name` with `model_args` on the meta device (shapes only, no memory): the
    pre-flight check of every builder option. Unknown keywords are refused by create_model from the
    builder's own signature (with the closest name); a bad value becomes one ConfigError line `model_args: ...`."""
    import torch

    from roadmap.registry import create_model

    try:
        with torch.device("meta"):
            return create_model(name, **model_args)
    except ConfigError as error:
        text = str(error)
        raise ConfigError(text if text.startswith("model_args") else f"model_args: {text}") from None
    except (TypeError, ValueError, RuntimeError, ZeroDivisionError, OverflowError) as error:  # e.g. a string or negative size
        line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"model_args: configuration {name} cannot be built with {model_args!r}: {line}") from None


def _check_models_and_data(specs, check_data: bool = True) -> None:
    """Unknown configuration or data-set names and bad model options fail here, before any job starts.

    Every distinct (model, model_args) is built once on the meta device; its own objective then fills
    the run's loss, penalties and lazy_interval where they were left None, so that each RunSpec's
    config is what the trainer writes as config.yaml."""
    from roadmap.registry import check_dataset, dataset_options, is_image_dataset, list_models

    models, checked, built = list_models(), set(), {}
    for index, spec in enumerate(specs):
        if spec.config.model not in models:
            raise ConfigError(f"{spec.experiment}: {unknown('configuration', spec.config.model, models)}")
        model_key = (spec.config.model, repr(sorted(spec.config.model_args.items())))
        if model_key not in built:
            try:
                built[model_key] = build_on_meta(spec.config.model, spec.config.model_args).loss_spec
            except ConfigError as error:
                raise ConfigError(f"{spec.experiment}: {error}") from None
        if None in (spec.config.loss, spec.config.penalties, spec.config.lazy_interval):
            spec.config = dataclasses.replace(spec.config, **spec.config.resolved_loss(built[model_key]).as_dict())
        key = (spec.config.dataset, repr(sorted(spec.config.dataset_args.items())))
        if check_data and key not in checked:
            checked.add(key)
            try:
                check_dataset(spec.config.dataset, **spec.config.dataset_args)
            except ConfigError as error:
                raise ConfigError(f"{spec.experiment}: {error}") from None
            except TypeError as error:  # an option the data set does not take
                raise ConfigError(f"{spec.experiment}: dataset_args: {error}") from None
        augment_p = spec.config.augment_p if isinstance(spec.config.augment_p, (list, tuple)) else [spec.config.augment_p]
        if any(augment_p) and not is_image_dataset(spec.config.dataset):
            raise ConfigError(f"{spec.experiment}: augment_p: data set {spec.config.dataset!r} is not made of images; "
                              f"the 'bgc' augmentation needs images (set augment_p: 0)")
        if spec.config.xflip and "xflip" not in dataset_options(spec.config.dataset):
            raise ConfigError(f"{spec.experiment}: xflip: data set {spec.config.dataset!r} cannot flip its samples "
                              f"(only image data sets do); set xflip: false")


def analyses_of(experiment: Experiment, results_root, prefix: str = "") -> list[tuple]:
    """(name, options, output folder) for the experiment's analyses and its includes'."""
    where = f"{prefix}{experiment.name}"
    found = [(name, dict(ANALYSES[name], **(options or {})), Path(results_root) / where / ANALYSIS_FOLDERS.get(name, name))
             for name, options in experiment.analyses.items()]
    for included in experiment.include:  # load_experiment refused include cycles already
        found += analyses_of(load_experiment(included), results_root, prefix=f"{where}/")
    return found
