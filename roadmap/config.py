"""The fully resolved configuration of one training run (dumped as config.yaml in the run folder)."""
import dataclasses
import re
from typing import Optional

import yaml

from roadmap.errors import ConfigError, check_int, check_number, closest, unknown
from roadmap.losses import LossSpec, check_loss_spec
from roadmap.presets import PRESETS, TRAINING_FIELDS
from roadmap.schedules import Ramp


@dataclasses.dataclass
class RunConfig:
    model: str = "toy_mlp"  # registered configuration (r3bench list)
    model_args: dict = dataclasses.field(default_factory=dict)  # builder overrides: width, precision, ... (`preset`: the architecture's own Table 9 column)
    dataset: str = "25gaussians"  # registered data set
    dataset_args: dict = dataclasses.field(default_factory=dict)  # data root, resolution, ...
    # The run's Table 9 column ("preset"): its training hyperparameters fill unset fields, and builders
    # and data sets that take a `preset` inherit it unless model_args / dataset_args name their own.
    preset: Optional[str] = None
    loss: Optional[str] = None  # gan | rpgan; None: the configuration's own objective
    penalties: Optional[list] = None  # subset of [r1, r2]; None: the configuration's own
    lazy_interval: Optional[int] = None  # penalty every k-th D step, weighted by k; None: the configuration's
    gamma: Ramp = 1.0  # penalty weight (gamma/2 * ||grad||^2); [a, b] = cosine a -> b over the burn-in
    lr: Ramp = 2e-4  # Adam learning rate for G and D (ramp allowed)
    beta2: Ramp = 0.99  # Adam beta2 (ramp allowed); beta1 is 0 throughout (paper principle b)
    ema_half_life_kimg: Ramp = 0.0  # G EMA half-life in kimg (ramp allowed); 0 = no averaging
    burn_in_kimg: float = 0.0  # length of the ramps, in thousands of real images shown to D
    duration_kimg: float = 256.0  # training length in thousands of real images shown to D
    batch: int = 64  # minibatch per step (global, across all ranks)
    batch_gpu: Optional[int] = None  # images per forward/backward pass on one rank (the official batch_gpu): the rank's share runs in micro-batches of this size, gradients accumulated; None: the whole share at once
    batch_gpu_G: Optional[int] = None  # the G phase's micro-batch (G has no double backward, so it fits more); None: batch_gpu
    tick_kimg: float = 8.0  # one metrics.jsonl line every this many kimg
    checkpoint_ticks: int = 4  # write checkpoint.pt every this many ticks (and at the end)
    seed: int = 0  # seeds weights, latents and data order; CPU runs are bitwise reproducible
    device: str = "cpu"  # cpu | cuda | auto (cuda when available)
    divergence_grad_norm: float = 1e4  # stop as `diverged` when mean ||grad_x D|| on fakes exceeds this
    xflip: bool = False  # random horizontal flips of real images
    grad_scaler: bool = False  # dynamic loss scaling (torch.amp.GradScaler), for IEEE fp16 runs
    eval_samples: Optional[int] = None  # samples scored at the end; None: the data set's protocol
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    augment_p: Ramp = 0.0  # probability of each 'bgc' augmentation (roadmap/augment.py); [a, b] = cosine a -> b over the burn-in
    data_workers: int = 0  # image data sets: processes decoding batches ahead of the step (torch DataLoader); 0: decoded in the training process, the same images in the same order
    data_prefetch: int = 2  # batches in flight per data worker
    cudnn_benchmark: bool = True  # cudnn.benchmark on CUDA (autotuned convolution kernels, as the official loop); false for reproducible kernel choice
    tf32: bool = False  # allow TF32 matmuls and convolutions on CUDA; off, as in the official training loop
    score_ticks: int = 0  # score the data set's own metric (modes/KL, FD, FID) every this many ticks into metrics.jsonl; 0: only at the end
    score_samples: Optional[int] = None  # samples per periodic score; None: the data set's default for periodic scoring
    logger: str = "jsonl"  # jsonl | tensorboard (also writes the per-tick scalars as a TensorBoard event file)
    feeds: Optional[str] = None  # paper table or section this run feeds (the experiment file's `feeds:`); reports select by it
    init_from: Optional[str] = None  # run folder (ours or import-official's) whose G, D and G_ema weights start this run: fresh optimizers, kimg and schedules from 0 (a start, not a resume)

    def resolved_loss(self, model_loss: LossSpec) -> LossSpec:
        """The run's loss selection: the configuration's own `model_loss` with this run's loss, penalties and
        lazy_interval where it sets them (not None)."""
        chosen = dict(loss=self.loss, penalties=None if self.penalties is None else tuple(self.penalties),
                      lazy_interval=self.lazy_interval)
        return dataclasses.replace(model_loss, **{field: value for field, value in chosen.items() if value is not None})


FIELDS = {field.name: field for field in dataclasses.fields(RunConfig)}
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64 bits; numpy and Python's random are seeded from it too
# A sanity ceiling for torch threads: far above any node, far below what kills an OpenMP pool
# (threads=100000 made libgomp run out of memory). The machine's own bound is checked before
# submission (runners/launch.py preflight), where the cores the job will have are known.
MAX_THREADS = 4096
# Settings left out of the binding of a run folder (and of a checkpoint) to its configuration,
# because they do not change what the run computes beyond float order: torch threads (at most the
# last bits of float sums; refusing over it would stop a sweep from moving to a bigger machine), how
# often checkpoints are written (resume is bitwise from any tick boundary) and which logger mirrors
# the tick scalars; nor the micro-batch sizes (float order of the gradient sums only), the data loader's
# workers and prefetch (same images in the same order) and cuDNN's autotuner (kernel choice).
IGNORED_SETTINGS = ("threads", "checkpoint_ticks", "logger", "batch_gpu", "batch_gpu_G", "data_workers", "data_prefetch",
                    "cudnn_benchmark")
# Filled in by the trainer from the configuration's defaults when a spec leaves them None: None
# now means "the configuration's own", which is what the stored value is.
DEFAULTED_SETTINGS = ("loss", "penalties", "lazy_interval")


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate mapping keys (the last one would silently win) and
    reads 1e-3 as a number (YAML 1.1 wants a dot in a float, so `lr: 1e-3` would be the string '1e-3')."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"line {line}: duplicate key {key!r} (the earlier value would be silently dropped)")
            if isinstance(key, (str, int, float, bool)):
                seen.add(key)
        return super().construct_mapping(node, deep)


StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_yaml(text: str):
    """Parse YAML text with StrictLoader (duplicate keys are a ConfigError; 1e-3 is a float)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def _check_ramp(name: str, value, minimum: float, strictly_positive: bool = False) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and len(value) != 2:
        raise ConfigError(f"{name}: a ramp is [start, end], got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{name}: expected a number or [start, end], got {value!r}")
        if v != v or v in (float("inf"), float("-inf")):  # NaN compares false with everything: checks would silently pass
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
        if v < minimum or (strictly_positive and v <= minimum):
            relation = ">" if strictly_positive else ">="
            raise ConfigError(f"{name}: must be {relation} {minimum}, got {value!r}")


def validate(config: RunConfig) -> RunConfig:
    """Check values that would otherwise fail deep inside a job; raise ConfigError naming the field."""
    _check_ramp("gamma", config.gamma, 0.0)
    _check_ramp("lr", config.lr, 0.0, strictly_positive=True)
    _check_ramp("beta2", config.beta2, 0.0)
    if any(v >= 1 for v in (config.beta2 if isinstance(config.beta2, (list, tuple)) else [config.beta2])):
        raise ConfigError(f"beta2: must be < 1, got {config.beta2!r}")
    _check_ramp("ema_half_life_kimg", config.ema_half_life_kimg, 0.0)
    for name in ("duration_kimg", "tick_kimg", "divergence_grad_norm"):
        check_number(name, getattr(config, name), 0.0, strictly_positive=True)
    check_number("burn_in_kimg", config.burn_in_kimg, 0.0)
    check_int("seed", config.seed, 0, MAX_SEED)
    check_int("threads", config.threads, 0, MAX_THREADS)
    check_int("data_workers", config.data_workers, 0)
    check_int("data_prefetch", config.data_prefetch, 1)
    check_int("batch", config.batch, 1)
    check_int("checkpoint_ticks", config.checkpoint_ticks, 1)
    if config.duration_kimg * 1000 < config.batch:  # shorter than one step: nothing trains, yet the run "completes"
        raise ConfigError(f"duration_kimg: {config.duration_kimg!r} kimg is shorter than one batch of {config.batch} images")
    if config.device not in ("cpu", "cuda", "auto") and not str(config.device).startswith("cuda:"):
        raise ConfigError(f"device: expected cpu, cuda or auto, got {config.device!r}")
    if config.preset is not None and config.preset not in PRESETS:
        raise unknown("preset", config.preset, PRESETS)
    _check_ramp("augment_p", config.augment_p, 0.0)
    if any(v > 1 for v in (config.augment_p if isinstance(config.augment_p, (list, tuple)) else [config.augment_p])):
        raise ConfigError(f"augment_p: a probability must be <= 1, got {config.augment_p!r}")
    check_int("score_ticks", config.score_ticks, 0)
    for name in ("score_samples", "eval_samples", "batch_gpu", "batch_gpu_G"):
        if getattr(config, name) is not None:
            check_int(name, getattr(config, name), 1)
    if config.logger not in ("jsonl", "tensorboard"):
        raise unknown("logger", config.logger, ("jsonl", "tensorboard"))
    for name in ("xflip", "grad_scaler", "tf32", "cudnn_benchmark"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"{name}: expected true or false, got {getattr(config, name)!r}")
    for name in ("model_args", "dataset_args"):
        if not isinstance(getattr(config, name), dict):
            raise ConfigError(f"{name}: expected a mapping, got {getattr(config, name)!r}")
    if config.penalties is not None and not isinstance(config.penalties, (list, tuple)):
        raise ConfigError(f"penalties: expected a list such as [r1, r2], got {config.penalties!r}")
    if config.init_from is not None:
        from roadmap.warm_start import check_init_from

        check_init_from(config)
    check_loss_spec(
        config.loss if config.loss is not None else "gan",
        config.penalties or [],
        config.lazy_interval if config.lazy_interval is not None else 1,
    )
    return config


def micro_batches(config: RunConfig, world_size: int = 1) -> tuple:
    """(D phase, G phase) micro-batch counts per rank: the rank's share of `batch` over batch_gpu
    (batch_gpu_G for G), a size at least the share meaning one pass; a share that does not split
    into equal micro-batches is a ConfigError (statistics and gradients average equal parts)."""
    share = config.batch // world_size
    counts = []
    for name in ("batch_gpu", "batch_gpu_G"):
        size = getattr(config, name)
        if name == "batch_gpu_G" and size is None:
            size = config.batch_gpu
        size = share if size is None else min(size, share)
        if share % size:
            raise ConfigError(f"{name}: {share} images per rank (batch {config.batch} over {world_size} ranks) "
                              f"do not split into micro-batches of {size}")
        counts.append(share // size)
    return tuple(counts)


def set_dotted(target: dict, dotted_key: str, value) -> None:
    """Set target['a']['b'] = value for 'a.b', creating mappings on the way."""
    *parents, leaf = dotted_key.split(".")
    for parent in parents:
        child = target.setdefault(parent, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted_key}: {parent!r} is not a mapping")
        target = child
    target[leaf] = value


def merge(base: dict, override: dict) -> dict:
    """Deep merge of nested mappings; override wins; dotted keys in override are expanded."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in base.items()}
    for key, value in override.items():
        if "." in key:
            head, rest = key.split(".", 1)
            if merged.get(head) is not None and not isinstance(merged[head], dict):  # e.g. batch.x=1 with batch: 64
                raise ConfigError(f"{key}: {head} is {merged[head]!r}, not a mapping with keys")
            merged[head] = merge(merged.get(head) or {}, {rest: value})
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve(values: dict) -> RunConfig:
    """Build a validated RunConfig: dataclass defaults < preset row < `values` (unknown keys rejected);
    the run's preset reaches model_args and dataset_args (see `inherit_preset`)."""
    for key in values:
        if key.split(".")[0] not in FIELDS:
            raise ConfigError(f"unknown key {key!r}{closest(key.split('.')[0], FIELDS)}")
    values = merge({}, values)
    preset = values.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise unknown("preset", preset, PRESETS)
        values = merge({name: PRESETS[preset][name] for name in TRAINING_FIELDS}, values)
    return inherit_preset(validate(RunConfig(**values)))


def inherit_preset(config: RunConfig) -> RunConfig:
    """The run's Table 9 column, written into model_args and dataset_args where the builder takes a
    `preset` and they name none, so that config.yaml records what was built (resolving twice changes
    nothing). A run without a preset leaves both as written: the builder's own default column then
    applies, as it did for every committed run. An unknown name is left for the registry's own error."""
    if config.preset is None:
        return config
    from roadmap.registry import builder_parameters

    inherited = {}
    for field, kind, name in (("model_args", "configuration", config.model), ("dataset_args", "data set", config.dataset)):
        arguments = getattr(config, field)
        if "preset" not in arguments and "preset" in builder_parameters(kind, name):
            inherited[field] = dict(arguments, preset=config.preset)
    return dataclasses.replace(config, **inherited) if inherited else config


def to_dict(config: RunConfig) -> dict:
    return dataclasses.asdict(config)


def _plain(value):
    """YAML round trip of a value (tuples become lists) so stored and current settings compare equal."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _first_difference(stored, now, where: str = ""):
    if isinstance(stored, dict) and isinstance(now, dict):
        for key in list(now) + [k for k in stored if k not in now]:
            found = _first_difference(stored.get(key, "(unset)"), now.get(key, "(unset)"), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    return None if stored == now else f"{where}: stored {stored}, now {now}"


def settings_difference(stored, now: dict):
    """'gamma: stored 1.0, now 10.0' for the first setting in `now` that differs from `stored`, or None.

    The one rule binding a run folder's config.yaml and a checkpoint's stored config to a run:
    IGNORED_SETTINGS are not compared, nor settings `stored` lacks (added to RunConfig since), nor
    DEFAULTED_SETTINGS left None in `now`. A `stored` that is not a mapping binds nothing.
    """
    if not isinstance(stored, dict):
        return None
    for key, value in _plain(now).items():
        if key in IGNORED_SETTINGS or key not in stored or (key in DEFAULTED_SETTINGS and value is None):
            continue
        found = _first_difference(_plain(stored[key]), value, key)
        if found:
            return found
    return None
