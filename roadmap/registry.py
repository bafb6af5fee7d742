"""Registry of configurations (Table 2 rows and the small test-bed networks) and of data sets.

A configuration is a builder function registered with ``@register_model``, keyed by the
function's name (timm's convention). It returns a ``ModelPair``: generator, discriminator and
the loss the configuration was defined with. Data sets register under an explicit name
(``25gaussians`` is not a Python identifier) and return a ``DataSource``.
"""
import dataclasses
import inspect
from typing import Callable, Optional, Protocol

import torch
from torch import nn

from roadmap.errors import check_options, unknown
from roadmap.losses import LossSpec
from roadmap.networks.operators import operators_for, set_operators
from roadmap.plugins import load_plugins  # noqa: F401  (re-exported: roadmap.fid and others call registry.load_plugins)

_model_builders: dict[str, Callable[..., "ModelPair"]] = {}
_dataset_builders: dict[str, Callable[..., "DataSource"]] = {}
_dataset_checks: dict[str, Callable[..., None]] = {}
_dataset_kinds: dict[str, str] = {}  # data-set name -> the name of its DatasetKind
_kinds: dict[str, "DatasetKind"] = {}


@dataclasses.dataclass(frozen=True)
class DatasetKind:
    """What a data set is, so that the runner, the commands and the reports decide by kind, never by name lists."""

    name: str  # the `kind=` of register_dataset
    images: bool  # samples are images [C, H, W] in [-1, 1]: the 'bgc' augmentation applies and FID can score them
    description: str = ""  # what its metrics are, for docs


def register_dataset_kind(name: str, images: bool, description: str = "") -> "DatasetKind":
    """Register a data-set kind (the one place kinds are declared; a plug-in may add its own)."""
    if name in _kinds:
        raise ValueError(f"data-set kind {name!r} registered twice")
    _kinds[name] = DatasetKind(name, bool(images), description)
    return _kinds[name]


register_dataset_kind("toy_mixture", images=False, description="2-D Gaussian mixture: modes, hq fraction, KL")
register_dataset_kind("toy_curve", images=False, description="2-D curve: coverage, support distance")
register_dataset_kind("stackedmnist", images=True, description="Stacked MNIST: 1000 modes, reverse KL")
register_dataset_kind("images", images=True, description="natural images: FID")


@dataclasses.dataclass
class ModelPair:
    """What a configuration builds: G(z, labels) -> samples and D(x, labels) -> logits [N]."""

    generator: nn.Module  # (z [N, latent_dim], labels [N] or None) -> samples [N, *data_shape]
    discriminator: nn.Module  # (samples [N, *data_shape], labels [N] or None) -> logits [N]
    latent_dim: int  # size of z
    loss_spec: LossSpec  # the configuration's own loss (objective name, penalties, lazy interval); a dict is converted
    description: str = ""  # one line for `r3bench list`
    # Extra per-sample G regularizer (Config A's path length penalty): (G, z, labels) -> [N],
    # already weighted; applied on every `generator_penalty_interval`-th G step, scaled by it.
    generator_penalty: Optional[Callable] = None
    generator_penalty_interval: int = 1
    # Extra per-step statistics from the networks themselves (e.g. the overflow/NaN counts of
    # networks/precision.py): () -> {name: float}, called once per training step after G's step;
    # the trainer averages them per tick into metrics.jsonl like its own statistics.
    step_statistics: Optional[Callable[[int], dict]] = None

    def __post_init__(self):
        if isinstance(self.loss_spec, dict):  # a builder's `loss` option, as YAML gives it
            self.loss_spec = LossSpec.from_dict(self.loss_spec)

    def place(self, device, operators: Optional[type] = None) -> "ModelPair":
        """Move G and D to `device` and choose, once, the operators their layers run (networks/operators.py):
        `operators` (PlainOperators or FastOperators), by default the device's own (operators_for); returns self."""
        chosen = operators or operators_for(device)
        for network in (self.generator, self.discriminator):
            set_operators(network.to(device), chosen)
        return self


class DataSource(Protocol):
    """A data set as the trainer sees it: an endless sampler plus its own evaluation.

    Sampling is on the CPU and driven by the caller's torch.Generator, so a run is reproducible
    and resumable from the generator state alone.
    """

    name: str
    shape: tuple  # shape of one sample, e.g. (2,) or (3, 32, 32)
    num_classes: int  # 0 for unconditional data

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple:
        """Return (samples [batch_size, *shape] float32, labels [batch_size] int64 or None)."""

    def evaluate(self, generate: Callable[[int], torch.Tensor]) -> dict:
        """Score a generator (generate(n) -> samples [n, *shape]); returns flat float/int metrics. In a run, `generate`
        is a roadmap.trainer.Samples, called on every rank: a data set that streams maps over its blocks
        (roadmap.evaluation.map_blocks) and returns its metrics on rank 0 only (the others' results are unused)."""

    def save_samples(self, samples: torch.Tensor, path) -> None:
        """Write a picture of generated samples (scatter plot or image grid) to `path`."""


def register_model(fn: Callable[..., ModelPair]) -> Callable[..., ModelPair]:
    """Register a configuration builder under its function name."""
    if fn.__name__ in _model_builders:
        raise ValueError(f"configuration {fn.__name__!r} registered twice")
    _model_builders[fn.__name__] = fn
    return fn


def register_dataset(name: str, check: Optional[Callable[..., None]] = None, kind: str = "images"):
    """Register a data-set builder under `name` (decorator factory); `kind` is a registered DatasetKind's name.

    `check(**options)` is an optional cheap validation of the builder options (a data root that
    exists, a valid resolution) that the runner calls before any job starts; it raises ConfigError.
    """

    def decorate(fn: Callable[..., DataSource]) -> Callable[..., DataSource]:
        if name in _dataset_builders:
            raise ValueError(f"data set {name!r} registered twice")
        if kind not in _kinds:
            raise ValueError(f"data set {name!r}: kind {kind!r} is not one of {sorted(_kinds)} (register_dataset_kind first)")
        _dataset_builders[name] = fn
        _dataset_kinds[name] = kind
        if check is not None:
            _dataset_checks[name] = check
        return fn

    return decorate


_load_all = load_plugins


def list_models() -> list[str]:
    _load_all()
    return sorted(_model_builders)


def list_datasets() -> list[str]:
    _load_all()
    return sorted(_dataset_builders)


def _check_keywords(kind: str, name: str, options: dict) -> None:
    """Refuse a keyword the builder's signature does not name (with the closest one): the signature is
    the one list of what a configuration or data set accepts. A builder taking **options checks its own."""
    builder = (_model_builders if kind == "configuration" else _dataset_builders)[name]
    if not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(builder).parameters.values()):
        check_options(f"option of {kind} {name}", options, builder_parameters(kind, name))


def create_model(name: str, **overrides) -> ModelPair:
    """Build configuration `name`; keyword overrides win over the builder's defaults.

    The pair is placed where it was built (the CPU, or the device of a `torch.device` context such as the
    memory estimate's meta device): ready to run there; `ModelPair.place` moves it elsewhere.
    """
    _load_all()
    if name not in _model_builders:
        raise unknown("configuration", name, _model_builders)
    _check_keywords("configuration", name, overrides)
    pair = _model_builders[name](**overrides)
    return pair.place(next(pair.discriminator.parameters()).device)


def create_dataset(name: str, **options) -> DataSource:
    """Build data set `name` with builder options (data root, resolution, ...)."""
    _load_all()
    if name not in _dataset_builders:
        raise unknown("data set", name, _dataset_builders)
    _check_keywords("data set", name, options)
    return _dataset_builders[name](**options)


def dataset_kind(name: str) -> Optional[str]:
    """The name of data set `name`'s registered kind, or None for an unknown name."""
    _load_all()
    return _dataset_kinds.get(name)


def is_image_dataset(name: str) -> bool:
    """Whether data set `name`'s kind is made of images (False for an unknown name)."""
    kind = dataset_kind(name)
    return kind is not None and _kinds[kind].images


def dataset_options(name: str) -> set:
    """The keyword options data set `name`'s builder takes (e.g. whether it can honour `xflip`)."""
    load_plugins()
    if name not in _dataset_builders:
        raise unknown("data set", name, _dataset_builders)
    return set(inspect.signature(_dataset_builders[name]).parameters)


def builder_parameters(kind: str, name: str) -> dict:
    """The keyword parameters of configuration or data set `name`'s builder (`kind`: "configuration" or
    "data set"), name -> inspect.Parameter; empty for an unknown name."""
    _load_all()
    builders = _model_builders if kind == "configuration" else _dataset_builders
    builder = builders.get(name) if isinstance(name, str) else None  # a mistyped value fails in its own check
    if builder is None:
        return {}
    return {key: parameter for key, parameter in inspect.signature(builder).parameters.items()
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)}


def check_dataset(name: str, **options) -> None:
    """Validate data-set options cheaply, without loading data (ConfigError on a problem)."""
    _load_all()
    if name not in _dataset_builders:
        raise unknown("data set", name, _dataset_builders)
    if name in _dataset_checks:
        _dataset_checks[name](**options)


def model_builder(name: str) -> Optional[Callable[..., ModelPair]]:
    """The registered builder itself (for docs and `r3bench list`), or None."""
    _load_all()
    return _model_builders.get(name)
