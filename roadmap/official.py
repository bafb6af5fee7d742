"""Official R3GAN `network-snapshot.pkl` -> an r3bench run folder, read without running pickle code (paper Section 3, Config E; Table 9).

The official training loop (`training/training_loop.py` of brownvc/R3GAN) pickles
`dict(G, D, G_ema, training_set_kwargs, cur_nimg, D_opt_state, G_opt_state)` whose modules are
classes of its own code. `pickle.load` would import that code and call whatever the pickle names,
so this module reads it with `SnapshotUnpickler`, which imports nothing the pickle names:
- official classes (`training.*`, `R3GAN.*`) and torch.nn module classes become `Record`s, plain
  holders of their pickled state (no constructor, no `__setstate__` of theirs runs);
- a StyleGAN3 `torch_utils.persistence` object becomes a `Record` holding its class name and
  state; its embedded module source is kept as a string and never executed;
- tensors are rebuilt from their storages, and a storage from its bytes through
  `torch.load(..., weights_only=True)` (torch's own `_load_from_bytes` loads with
  weights_only=False); parameters become plain tensors;
- every other global (functions, builtins, other modules' classes) is refused: ConfigError, one line.

Our Config E is parameter-for-parameter the official network (tests/roadmap/test_configs.py), so the
import is a renaming of state-dict keys: the architecture (resolution, stage widths, groups, blocks,
latent size, classes) is read from the tensor shapes, matched against our Config E at a Table 9
preset and a width multiplier, and every tensor must land on a tensor of the same shape.
"""
import collections
import hashlib
import io
import math
import pickle
import re
from pathlib import Path

import torch

from roadmap.errors import ConfigError

OFFICIAL_PREFIXES = ("training.", "R3GAN.")  # the official code's packages: their classes become Records
TORCH_MODULE_PREFIX = "torch.nn.modules."  # ModuleList, Conv2d, Linear, LeakyReLU...: Records too
PERSISTENT_RECONSTRUCT = ("torch_utils.persistence", "_reconstruct_persistent_obj")
DTYPES = {name: getattr(torch, name) for name in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8", "bool")}
ORIGIN = "official checkpoint"  # summary.json `origin` of an imported run; reports list these in their own rows
FEEDS = "official-checkpoints"  # config.yaml `feeds` of an imported run: reports/official.py claims these runs
# Dataset registered in r3bench for each preset a published checkpoint was trained on; the others
# (FFHQ, ImageNet) are image folders whose path the user gives.
PRESET_DATASETS = {"stackedmnist": "stackedmnist", "cifar10": "cifar10"}


class Record:
    """A pickled object of a class we do not import: its qualified class name and pickled state, nothing else."""

    qualified_name = "?"

    def __init__(self, *args, **kwargs):  # REDUCE on the class itself: keep the arguments as data
        self.args, self.state = args, kwargs or None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"Record({self.qualified_name})"

    def attribute(self, name, default=None):
        """A field of the pickled __dict__ (nn.Module keeps its own fields there)."""
        return self.state.get(name, default) if isinstance(self.state, dict) else default


_record_classes: dict = {}


def _record_class(qualified_name: str) -> type:
    """One Record subclass per pickled class name (a class, since NEWOBJ calls cls.__new__(cls))."""
    if qualified_name not in _record_classes:
        _record_classes[qualified_name] = type("Record", (Record,), {"qualified_name": qualified_name})
    return _record_classes[qualified_name]


class AttributeDict(dict):
    """dnnlib.EasyDict (a dict subclass) as a plain dict."""

    def __setstate__(self, state):  # EasyDict pickles an empty __dict__; its items come by SETITEMS
        pass


def _persistent_record(meta):
    """torch_utils.persistence's reconstruct hook, without its `exec` of meta['module_src']."""
    if not isinstance(meta, dict) or not isinstance(meta.get("class_name"), str):
        raise ConfigError("PKL: a persistent object without a class name (not a StyleGAN3-style pickle)")
    record = _record_class(f"<persistent>.{meta['class_name']}")()
    record.state = meta.get("state")
    record.module_source = meta.get("module_src")  # kept as text for the refusal message; never executed
    return record


def _storage_from_bytes(data):
    """A storage from torch.save bytes, read with torch's weights-only unpickler (never `_load_from_bytes`)."""
    if not isinstance(data, (bytes, bytearray)):
        raise ConfigError("PKL: a tensor storage without bytes")
    try:
        storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for anything but plain storages, or corrupt bytes
        raise ConfigError(f"PKL: a tensor storage is not plain tensor data ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:120]})") from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise ConfigError(f"PKL: a tensor storage holds a {type(storage).__name__}, not a storage")
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """torch._utils._rebuild_tensor_v2 for a checked storage (no hooks, no metadata callbacks)."""
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise ConfigError("PKL: a tensor whose storage is not a storage")
    try:
        return torch._utils._rebuild_tensor(storage, storage_offset, tuple(size), tuple(stride))
    except Exception as error:  # offsets or strides past the storage: a corrupt file
        raise ConfigError(f"PKL: a tensor does not fit its storage ({str(error).splitlines()[0][:120]})") from None


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """A pickled nn.Parameter as the plain tensor it holds."""
    if not isinstance(data, torch.Tensor):
        raise ConfigError("PKL: a parameter without tensor data")
    return data


class _TensorType:
    """Stands for torch.Tensor / nn.Parameter as the `new_type` argument of a rebuild; not callable, so a
    pickle cannot construct tensors of any size through the class itself."""

    def __init__(self, name):
        self.name = name


TENSOR_TYPES = {("torch", "Tensor"): _TensorType("torch.Tensor"), ("torch.nn.parameter", "Parameter"): _TensorType("Parameter")}


def _rebuild_from_type(function, new_type, args, state=None):
    """torch._tensor._rebuild_from_type_v2 (a tensor with Python attributes): the plain tensor, attributes dropped."""
    if function is not _rebuild_tensor or new_type not in TENSOR_TYPES.values():
        raise ConfigError("PKL: a tensor rebuilt through something other than tensor data")
    return function(*args)


class SnapshotUnpickler(pickle.Unpickler):
    """Unpickler that imports nothing the pickle names (module docstring)."""

    SAFE = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        **TENSOR_TYPES,
        ("torch", "Size"): torch.Size,
        ("dnnlib.util", "EasyDict"): AttributeDict,
        PERSISTENT_RECONSTRUCT: _persistent_record,
    }

    def find_class(self, module, name):
        if (module, name) in self.SAFE:
            return self.SAFE[(module, name)]
        if module == "torch" and name in DTYPES:
            return DTYPES[name]
        if module.startswith(OFFICIAL_PREFIXES) or module.startswith(TORCH_MODULE_PREFIX):
            return _record_class(f"{module}.{name}")
        raise ConfigError(f"PKL: refuses {module}.{name} (only R3GAN's network classes, torch.nn containers "
                          "and tensor data are read)")

    def persistent_load(self, pid):
        raise ConfigError("PKL: uses persistent ids (a torch.save zip file, not an official network-snapshot.pkl)")


def read_snapshot(path) -> dict:
    """The snapshot dict of an official pickle, with Records for modules (ConfigError for anything else)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"PKL: {str(path)!r} is not a file")
    data = path.read_bytes()
    try:
        snapshot = SnapshotUnpickler(io.BytesIO(data)).load()
    except ConfigError:
        raise
    except Exception as error:  # EOFError, UnpicklingError, ...: a truncated or garbled file
        raise ConfigError(f"PKL: {path.name} is truncated or not a pickle ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:100] if str(error) else 'no detail'})") from None
    if not isinstance(snapshot, dict) or "G_ema" not in snapshot:
        found = sorted(map(str, snapshot))[:8] if isinstance(snapshot, dict) else type(snapshot).__name__
        raise ConfigError(f"PKL: not an R3GAN network snapshot (expected a dict with G_ema, and G and D; found {found})")
    return snapshot


# ----------------------------------------------------------------------------------------------
# Records -> state dicts in the official naming -> our Config E's naming.

def record_state_dict(record, prefix: str = "") -> dict:
    """state_dict() of a pickled nn.Module Record: persistent buffers and parameters, dotted names."""
    if not isinstance(record, Record) or not isinstance(record.state, dict):
        raise ConfigError(f"PKL: {prefix.rstrip('.') or 'a network'} is not a pickled torch module")
    state, result = record.state, {}
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        for name, tensor in (state.get(kind) or {}).items():
            if tensor is None or (kind == "_buffers" and name in non_persistent):
                continue
            if not isinstance(tensor, torch.Tensor):
                raise ConfigError(f"PKL: {prefix}{name} is not a tensor")
            result[prefix + name] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            result.update(record_state_dict(child, f"{prefix}{name}."))
    return result


def _check_r3gan(record, role: str, expected: str) -> None:
    """One line for a network that is not the official R3GAN class (a StyleGAN2/3 pickle, say)."""
    name = record.qualified_name if isinstance(record, Record) else type(record).__name__
    if name.startswith("<persistent>"):
        children = sorted((record.attribute("_modules") or {}) if isinstance(record.state, dict) else [])
        raise ConfigError(f"PKL: {role} is a StyleGAN-style persistent class {name.split('.', 1)[1]!r} "
                          f"(sub-networks {children[:4]}), not R3GAN's {expected}; only official R3GAN snapshots are imported")
    inner = record.attribute("_modules", {}).get("Model") if isinstance(record, Record) else None
    if name != expected or not isinstance(inner, Record) or not inner.qualified_name.startswith("R3GAN.Networks."):
        raise ConfigError(f"PKL: {role} is {name}, not R3GAN's {expected} wrapping R3GAN.Networks "
                          "(a StyleGAN2/3 or other pickle?)")


# Official name (after the wrapper's `Model.`) -> ours; the stage layer index is kept, since both
# list a G stage as [transition, blocks...] and a D stage as [blocks..., transition].
_BLOCK = {"LinearLayer1.Layer.weight": "conv1.weight", "LinearLayer2.Layer.weight": "conv2.weight",
          "LinearLayer3.Layer.weight": "conv3.weight", "NonLinearity1.Bias": "act1.bias", "NonLinearity2.Bias": "act2.bias"}
_TRANSITION = {"Basis": "basis", "LinearLayer.weight": "linear.weight", "LinearLayer.Layer.weight": "conv.weight",
               "Basis.weight": "depthwise.weight"}
_TOP = {"AggregationLayer.Layer.weight": "to_rgb.0.weight", "ExtractionLayer.Layer.weight": "from_rgb.weight",
        "EmbeddingLayer.weight": "embedding.weight"}
_LAYER = re.compile(r"^MainLayers\.(\d+)\.Layers\.(\d+)\.(.+)$")


def to_ours(official: dict, role: str) -> tuple:
    """(our state dict, resampling kernels) from an official wrapper's state dict (keys `Model.`...)."""
    ours, kernels = {}, []
    for key, tensor in official.items():
        if not key.startswith("Model."):
            raise ConfigError(f"PKL: {role} has an unexpected tensor {key!r}")
        name = key[len("Model."):]
        match = _LAYER.match(name)
        if name in _TOP:
            ours[_TOP[name]] = tensor
        elif match and match.group(3) == "Resampler.Kernel":
            kernels.append((key, tensor))  # a fixed filter; ours is a non-persistent buffer, checked below
        elif match and (match.group(3) in _BLOCK or match.group(3) in _TRANSITION):
            part = _BLOCK.get(match.group(3)) or _TRANSITION[match.group(3)]
            ours[f"stages.{match.group(1)}.layers.{match.group(2)}.{part}"] = tensor
        else:
            raise ConfigError(f"PKL: {role} has a tensor {key!r} that R3GAN's Config E does not have")
    return ours, kernels


def _stage_count(state: dict) -> int:
    return 1 + max(int(match.group(1)) for match in map(_LAYER.match, (k[len("Model."):] for k in state)) if match)


def infer_architecture(g_state: dict, d_state: dict) -> dict:
    """Resolution, stems, hidden widths, groups, blocks, latent size, classes from the official tensors (G side)."""
    stages = _stage_count(g_state)
    basis = g_state.get("Model.MainLayers.0.Layers.0.Basis")
    if basis is None or basis.dim() != 3 or tuple(basis.shape[1:]) != (4, 4):
        raise ConfigError("PKL: G has no 4x4 generative basis (Model.MainLayers.0.Layers.0.Basis): not R3GAN's Config E")
    stems, hiddens, groups, blocks = [], [], [], []
    for index in range(stages):
        first = f"Model.MainLayers.{index}.Layers.{{}}.LinearLayer1.Layer.weight"
        count = sum(1 for layer in range(1, 64) if first.format(layer) in g_state)
        if count == 0:
            raise ConfigError(f"PKL: G stage {index} has no residual block")
        conv2 = g_state[f"Model.MainLayers.{index}.Layers.1.LinearLayer2.Layer.weight"]
        stems.append(int(g_state[first.format(1)].shape[1]))
        hiddens.append(int(conv2.shape[0]))
        groups.append(int(conv2.shape[0] // conv2.shape[1]))
        blocks.append(count)
    embedding = g_state.get("Model.EmbeddingLayer.weight")
    num_classes = int(embedding.shape[1]) if embedding is not None else 0
    in_features = int(g_state["Model.MainLayers.0.Layers.0.LinearLayer.weight"].shape[1])
    latent_dim = in_features - (int(embedding.shape[0]) if embedding is not None else 0)
    if d_state is not None and ("Model.EmbeddingLayer.weight" in d_state) != bool(num_classes):
        raise ConfigError("PKL: G and D disagree on class conditioning")
    if len(set(blocks)) != 1:
        raise ConfigError(f"PKL: residual blocks per stage {blocks} differ; Config E has the same count at every stage")
    return dict(resolution=4 * 2 ** (stages - 1), stems=stems[::-1], hiddens=hiddens[::-1], groups=groups[::-1],
                blocks=blocks[0], latent_dim=latent_dim, num_classes=num_classes)


def _shapes(module) -> dict:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def match_config(arch: dict, g_ours: dict, d_ours: dict, preset=None) -> dict:
    """model_args of our Config E whose G and D have exactly these tensor shapes (ConfigError if none)."""
    from roadmap.presets import NUM_CLASSES, PRESETS
    from roadmap.registry import create_model

    wanted_g = {key: tuple(value.shape) for key, value in g_ours.items()}
    wanted_d = None if d_ours is None else {key: tuple(value.shape) for key, value in d_ours.items()}
    candidates = [preset] if preset else list(PRESETS)
    tried = []
    for name in candidates:
        row = PRESETS[name]
        if NUM_CLASSES.get(name, 0) != arch["num_classes"] or (arch["num_classes"] and not row["conditional"]):
            continue
        count = len(row["stylegan2_channels"])
        stages = int(math.log2(arch["resolution"])) - 1
        if stages > count:
            continue
        # Width: the highest-resolution stem over Config E's stem at width 1 (1.5x Config A's width).
        base = round(1.5 * row["stylegan2_channels"][count - stages])
        width = arch["stems"][0] / base
        model_args = dict(preset=name, width=width, blocks=arch["blocks"], latent_dim=arch["latent_dim"])
        if arch["resolution"] != row["resolution"]:
            model_args["resolution"] = arch["resolution"]
        with torch.device("meta"):
            try:
                pair = create_model("E", **model_args)
            except ConfigError:
                continue
        got_g, got_d = _shapes(pair.generator), _shapes(pair.discriminator)
        if got_g == wanted_g and (wanted_d is None or got_d == wanted_d):
            return model_args
        tried.append(name)
        if preset:
            diff = sorted(set(got_g.items()) ^ set(wanted_g.items())) + sorted(set(got_d.items()) ^ set((wanted_d or got_d).items()))
            raise ConfigError(f"PKL: the networks do not match Config E at preset {name!r}, width {width:.4g} "
                              f"(first differing tensor: {diff[0][0]} {diff[0][1]})")
    described = (f"{arch['resolution']} px, stems {arch['stems']}, groups {arch['groups']}, {arch['blocks']} blocks per stage, "
                 f"{arch['num_classes']} classes")
    raise ConfigError(f"PKL: no Table 9 preset's Config E has these tensor shapes ({described}; tried {tried or 'none'})")


def convert(snapshot: dict, preset=None) -> dict:
    """Our model_args and G, D, G_ema state dicts for an official snapshot (ConfigError on any mismatch).

    A snapshot holding only G_ema (as a file trimmed for sampling would) gives G = G_ema and D = None.
    """
    roles = [role for role in ("G", "D", "G_ema") if snapshot.get(role) is not None]
    expected = dict(G="training.networks.Generator", G_ema="training.networks.Generator", D="training.networks.Discriminator")
    for role in roles:
        _check_r3gan(snapshot[role], role, expected[role])
    official = {role: record_state_dict(snapshot[role]) for role in roles}
    official.setdefault("G", official["G_ema"])
    roles = [role for role in ("G", "D", "G_ema") if role in official]
    for role in ("G", "G_ema"):
        if "Model.MainLayers.0.Layers.0.Basis" not in official[role]:
            raise ConfigError(f"PKL: {role} has no generative basis (not R3GAN's Config E generator)")
    shapes = {role: {key: tuple(value.shape) for key, value in official[role].items()} for role in ("G", "G_ema")}
    if shapes["G"] != shapes["G_ema"]:
        key = sorted(set(shapes["G"].items()) ^ set(shapes["G_ema"].items()))[0][0]
        raise ConfigError(f"PKL: G and G_ema differ in tensor {key!r} (shape or presence)")
    ours, kernels = {"D": None}, []
    for role in roles:
        ours[role], found = to_ours(official[role], role)
        kernels += found
    for key, kernel in kernels:  # the official [1, 2, 1] filter gives bilinear 2x resampling: ours, fixed
        expected = torch.tensor([1.0, 3.0, 3.0, 1.0])
        expected = torch.outer(expected, expected) / 64
        if tuple(kernel.shape) != (4, 4) or not torch.allclose(kernel.float(), expected):
            raise ConfigError(f"PKL: {key} is not the bilinear [1, 3, 3, 1] resampling filter of Config E")
    arch = infer_architecture(official["G"], official.get("D"))
    model_args = match_config(arch, ours["G"], ours["D"], preset)
    for role in roles:
        for key, value in ours[role].items():
            if not value.is_floating_point() or not torch.isfinite(value).all():
                raise ConfigError(f"PKL: {role} tensor {key!r} is not finite floating-point data")
    return dict(model_args=model_args, architecture=arch,
                G={k: v.float().contiguous() for k, v in ours["G"].items()},
                D=None if ours["D"] is None else {k: v.float().contiguous() for k, v in ours["D"].items()},
                G_ema={k: v.float().contiguous() for k, v in ours["G_ema"].items()})


# ----------------------------------------------------------------------------------------------
# The run folder.

def _training_set(snapshot: dict) -> dict:
    """The snapshot's training_set_kwargs (the data set the official run trained on), or {}."""
    value = snapshot.get("training_set_kwargs")
    return value if isinstance(value, dict) else {}


def _dataset(model_args: dict, snapshot: dict) -> tuple:
    """(dataset name, dataset_args) of the imported run: the preset's registered data set, else an image folder."""
    preset = model_args["preset"]
    training_set = _training_set(snapshot)
    if preset in PRESET_DATASETS:
        name = PRESET_DATASETS[preset]
        args = {"resolution": model_args["resolution"]} if "resolution" in model_args else {}
        return name, args
    path = training_set.get("path")
    return "imagefolder", ({"path": str(path)} if isinstance(path, str) else {})


def import_snapshot(pkl, out_dir, preset=None, dataset_args=None) -> dict:
    """Write the run folder `out_dir` for official snapshot `pkl`; returns its summary (ConfigError: nothing written)."""
    import yaml

    from roadmap import files
    from roadmap.config import resolve, to_dict
    from roadmap.errors import check_options, unknown
    from roadmap.presets import PRESETS
    from roadmap.registry import create_model, dataset_options
    from roadmap.outcome import run_summary, write_summary

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"--out: {str(out_dir)!r} exists and is not an empty folder")
    if preset is not None and preset not in PRESETS:
        raise unknown("preset", preset, PRESETS)
    snapshot = read_snapshot(pkl)
    converted = convert(snapshot, preset)
    model_args = converted["model_args"]
    dataset, inferred_args = _dataset(model_args, snapshot)
    dataset_args = dict(inferred_args, **(dataset_args or {}))
    check_options(f"--data key of data set {dataset!r}", dataset_args, dataset_options(dataset))
    cur_nimg = snapshot.get("cur_nimg")
    cur_nimg = int(cur_nimg) if isinstance(cur_nimg, int) and not isinstance(cur_nimg, bool) and cur_nimg >= 0 else 0
    config = resolve(dict(model="E", model_args=model_args, dataset=dataset, dataset_args=dataset_args,
                          preset=model_args["preset"], feeds=FEEDS))
    resolved = dict(to_dict(config), loss="rpgan", penalties=["r1", "r2"], lazy_interval=1)
    # Every tensor must load into our networks strictly (names and shapes), before anything is written.
    pair = create_model("E", **model_args)
    try:
        for role, module in (("G", pair.generator), ("D", pair.discriminator), ("G_ema", pair.generator)):
            if converted[role] is not None:
                module.load_state_dict(converted[role], strict=True)
    except RuntimeError as error:
        raise ConfigError(f"PKL: the tensors do not load into Config E ({str(error).splitlines()[0][:160]})") from None
    digest = hashlib.sha256(Path(pkl).read_bytes()).hexdigest()
    provenance = dict(origin=ORIGIN, source=str(Path(pkl).resolve()), sha256=digest, cur_nimg=cur_nimg,
                      networks=[role for role in ("G", "D", "G_ema") if snapshot.get(role) is not None],
                      architecture=converted["architecture"], model_args=model_args,
                      training_set_kwargs={k: v for k, v in _training_set(snapshot).items()
                                           if isinstance(v, (str, int, float, bool, type(None)))})
    files.make_dirs(out_dir)
    files.write_text(out_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    files.write_text(out_dir / "metrics.jsonl", "")
    networks = dict(generator=converted["G"], discriminator=converted["D"], generator_ema=converted["G_ema"])
    files.save_checkpoint(out_dir, dict({key: value for key, value in networks.items() if value is not None},
                                        config=resolved, nimg=cur_nimg, origin=ORIGIN))
    files.write_json(out_dir / "official.json", provenance)
    # Not trained here: no config hash (its settings are the snapshot's), and the device of the import.
    summary = run_summary(config, out_dir, "completed", kimg=cur_nimg / 1000, device="cpu", config_hash=None, origin=ORIGIN,
                          source_sha256=digest)
    write_summary(out_dir, summary)
    return summary


def run_import(args) -> int:
    """`r3bench import-official PKL --out RUN_DIR [--preset P] [--data KEY=VALUE ...]`."""
    import yaml

    dataset_args = {}
    for item in args.data:
        key, _, value = item.partition("=")
        if not key or not _:
            raise ConfigError(f"--data: expected KEY=VALUE, got {item!r}")
        dataset_args[key] = yaml.safe_load(value)
    summary = import_snapshot(args.pkl, args.out, args.preset, dataset_args)
    provenance = __import__("roadmap.files", fromlist=["read_json"]).read_json(Path(args.out) / "official.json")
    args_text = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in provenance["model_args"].items())
    print(f"import-official: {args.pkl} -> {args.out}: Config E ({args_text}), kimg {summary['kimg']:g}, sha256 "
          f"{summary['source_sha256'][:12]}")
    return 0
