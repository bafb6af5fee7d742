"""Importing official R3GAN snapshots (issue 26): numbers against the official code, refusals, safety, and every command on the import.

The fixtures `tests/fixtures/official/{cifar10_tiny,stackedmnist16_tiny}.pkl` were made once with
the official code (https://github.com/brownvc/R3GAN at commit 19a7ddf463fb, torch 2.14.1, CPU) by
`tests/fixtures/official/make_fixture.py` (its docstring says how): official Config E networks at a
tiny width (stem 8, expanded 16), seeded noise on every parameter, pickled exactly as the official
training loop writes `network-snapshot.pkl`; the `.outputs.pt` beside each holds the official
modules' fp32 outputs (every stage set to float32) on fixed inputs, recorded at the same time.
Set R3GAN_OFFICIAL to a checkout of the official code to also re-make the fixtures with it here
and compare against them live (R3GAN_OFFICIAL_PYTHON: an interpreter with the official code's
dependencies, e.g. a venv with setuptools < 80, psutil and click; default: this one).
"""
import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

from reports.build import build_report
from roadmap import files
from roadmap.errors import ConfigError
from roadmap.official import convert, import_snapshot, read_snapshot
from roadmap.registry import create_model
from runners.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "official"
CIFAR = FIXTURES / "cifar10_tiny.pkl"
MNIST16 = FIXTURES / "stackedmnist16_tiny.pkl"
WIDTH = 8 / 768  # stem 8 over Config E's 768 at width 1


def _outputs(name):
    return torch.load(FIXTURES / f"{name}.outputs.pt", weights_only=True)


def _our_outputs(run_dir, recorded, plain=False):
    """Our G_ema(z), G(z), D(x) of an imported run on the recorded inputs (on the plain operators if `plain`)."""
    from roadmap.networks.operators import PlainOperators

    checkpoint = files.load_checkpoint(run_dir)
    pair = create_model("E", **checkpoint["config"]["model_args"]).place("cpu", PlainOperators if plain else None)
    labels = recorded["labels"] if pair.generator.num_classes else None
    result = {}
    with torch.no_grad():
        for role, key, module, inputs in (("G_ema", "generator_ema", pair.generator, recorded["z"]),
                                          ("G", "generator", pair.generator, recorded["z"]),
                                          ("D", "discriminator", pair.discriminator, recorded["x"])):
            module.load_state_dict(checkpoint[key])
            result[role] = module.eval()(inputs, labels)
    return result


def _our_outputs_g_ema(run_dir, recorded):
    checkpoint = files.load_checkpoint(run_dir)
    pair = create_model("E", **checkpoint["config"]["model_args"])
    pair.generator.load_state_dict(checkpoint["generator_ema"])
    with torch.no_grad():
        return pair.generator.eval()(recorded["z"], recorded["labels"])


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Both fixtures imported once: {name: run folder}."""
    root = tmp_path_factory.mktemp("imported")
    return {name: (import_snapshot(FIXTURES / f"{name}.pkl", root / name), root / name)[1]
            for name in ("cifar10_tiny", "stackedmnist16_tiny")}


# ----------------------------------------------------------------------------------------------
# Numbers.

@pytest.mark.parametrize("name", ["cifar10_tiny", "stackedmnist16_tiny"])
def test_imported_networks_reproduce_the_official_outputs(imported, name):
    recorded = _outputs(name)
    ours = _our_outputs(imported[name], recorded)
    for role in ("G_ema", "G", "D"):
        scale = recorded[role].abs().max().item()
        assert scale > 0.1  # the fixture's outputs are not trivially zero
        assert ours[role].shape == recorded[role].shape
        # fp32 on both sides. Measured on the machine that made the fixture: D equal bitwise, G within
        # 2.8e-7 of its scale (the official upsampler, upfirdn2d's reference path, sums in another order)
        assert (ours[role] - recorded[role]).abs().max().item() <= 1e-6 * scale, role
    # G and G_ema differ in the fixture: each role landed on its own network
    assert (recorded["G_ema"] - recorded["G"]).abs().max().item() > 0.1
    # reading the pickle imported none of the modules it names
    assert not [module for module in sys.modules if module.split(".")[0] in ("training", "R3GAN", "torch_utils", "dnnlib")]


def test_architecture_is_read_from_the_tensors(imported):
    cifar = yaml.safe_load((imported["cifar10_tiny"] / "config.yaml").read_text())
    assert cifar["model"] == "E" and cifar["dataset"] == "cifar10" and cifar["feeds"] == "official-checkpoints"
    assert cifar["model_args"] == dict(preset="cifar10", width=WIDTH, blocks=1, latent_dim=64)
    assert cifar["gamma"] == [0.05, 0.005] and cifar["batch"] == 512  # Table 9's CIFAR-10 row
    mnist = yaml.safe_load((imported["stackedmnist16_tiny"] / "config.yaml").read_text())
    assert mnist["model_args"] == dict(preset="stackedmnist", width=WIDTH, blocks=1, latent_dim=64, resolution=16)
    assert mnist["dataset"] == "stackedmnist" and mnist["dataset_args"] == {"resolution": 16}
    official = files.read_json(imported["cifar10_tiny"] / "official.json")
    assert official["architecture"]["stems"] == [8, 8, 8, 8] and official["architecture"]["num_classes"] == 10
    assert official["cur_nimg"] == 1234
    summary = files.read_json(imported["cifar10_tiny"] / "summary.json")
    assert summary["origin"] == "official checkpoint" and summary["kimg"] == 1.234
    # parameter counts: the official G of this fixture has 12184 parameters (counted with its code)
    pair = create_model("E", **cifar["model_args"])
    assert sum(p.numel() for p in pair.generator.parameters()) == 12184


@pytest.mark.skipif(not os.environ.get("R3GAN_OFFICIAL"), reason="R3GAN_OFFICIAL (a checkout of brownvc/R3GAN) not set")
def test_live_official_code(tmp_path):
    """Re-make the fixtures with the official code at $R3GAN_OFFICIAL (its own process) and import them."""
    python = os.environ.get("R3GAN_OFFICIAL_PYTHON", sys.executable)
    made = subprocess.run([python, str(FIXTURES / "make_fixture.py"), os.environ["R3GAN_OFFICIAL"], str(tmp_path)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    for name in ("cifar10_tiny", "stackedmnist16_tiny"):
        import_snapshot(tmp_path / f"{name}.pkl", tmp_path / f"run-{name}")
        recorded = torch.load(tmp_path / f"{name}.outputs.pt", weights_only=True)
        ours = _our_outputs(tmp_path / f"run-{name}", recorded, plain=True)
        assert torch.equal(ours["D"], recorded["D"])  # bitwise: the same operators in the same order
        for role in ("G_ema", "G"):  # the upsampler differs (official: upfirdn2d's reference path)
            assert (ours[role] - recorded[role]).abs().max().item() <= 1e-6 * recorded[role].abs().max().item()


# ----------------------------------------------------------------------------------------------
# Refusals: one line, exit 2, nothing written.

def _refused(capsys, pkl, out, *extra):
    code = main(["import-official", str(pkl), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    return err


@contextlib.contextmanager
def fake_modules(**modules):
    """Temporarily importable modules {dotted name: {attribute: value}}, so pickle can name their classes."""
    made = []
    try:
        for name, attributes in modules.items():
            module = types.ModuleType(name)
            for key, value in attributes.items():
                value.__module__, value.__qualname__ = name, key
                setattr(module, key, value)
            sys.modules[name] = module
            made.append(name)
        yield
    finally:
        for name in made:
            sys.modules.pop(name, None)


def test_truncated_file(tmp_path, capsys):
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(CIFAR.read_bytes()[:50_000])
    assert "truncated or not a pickle" in _refused(capsys, broken, tmp_path / "out")


def test_a_global_outside_the_allowed_set_is_refused_and_not_called(tmp_path, capsys):
    marker = tmp_path / "called"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(dict(G=Payload(), D=None, G_ema=None)))
    err = _refused(capsys, evil, tmp_path / "out")
    assert "refuses posix.system" in err or "refuses os.system" in err
    assert not marker.exists()


def test_stylegan2_pickle_is_refused(tmp_path, capsys):
    class Generator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mapping, self.synthesis = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

    class Discriminator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.b4 = torch.nn.Linear(2, 1)

    with fake_modules(**{"training": {}, "training.networks_stylegan2": dict(Generator=Generator, Discriminator=Discriminator)}):
        data = pickle.dumps(dict(G=Generator(), D=Discriminator(), G_ema=Generator(), cur_nimg=0))
    stylegan = tmp_path / "stylegan2.pkl"
    stylegan.write_bytes(data)
    err = _refused(capsys, stylegan, tmp_path / "out")
    assert "training.networks_stylegan2.Generator, not R3GAN's training.networks.Generator" in err


def repickle(snapshot) -> bytes:
    """Pickle a read_snapshot() result back in the official format: each Record as an instance of a class
    of its name (stubs in fake modules for the official code, torch's own classes for torch.nn)."""
    from roadmap.official import Record

    stubs = {}

    def collect(value):
        if isinstance(value, Record):
            module, _, name = value.qualified_name.rpartition(".")
            if not module.startswith("torch."):
                stubs.setdefault(module, {})[name] = type(name, (), {})
            collect(value.state)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    def rebuild(value):
        if isinstance(value, Record):
            module, _, name = value.qualified_name.rpartition(".")
            cls = getattr(sys.modules[module], name)
            instance = cls.__new__(cls)
            instance.__dict__.update(rebuild(value.state))
            return instance
        if isinstance(value, dict):
            return type(value)((key, rebuild(item)) for key, item in value.items())
        return value

    collect(snapshot)
    with fake_modules(**{module.split(".")[0]: {} for module in stubs}, **stubs):
        return pickle.dumps(rebuild(snapshot), protocol=4)


def _aggregation(snapshot, role):
    return snapshot[role].state["_modules"]["Model"].state["_modules"]["AggregationLayer"].state["_modules"]["Layer"]


def test_wrong_tensor_shape_in_an_official_format_pickle(tmp_path, capsys):
    snapshot = read_snapshot(CIFAR)
    (tmp_path / "same.pkl").write_bytes(repickle(snapshot))
    assert main(["import-official", str(tmp_path / "same.pkl"), "--out", str(tmp_path / "same")]) == 0  # the round trip reads
    assert torch.equal(files.load_checkpoint(tmp_path / "same")["generator_ema"]["to_rgb.0.weight"],
                       _aggregation(snapshot, "G_ema").state["_parameters"]["weight"])
    for role in ("G", "G_ema"):
        _aggregation(snapshot, role).state["_parameters"]["weight"] = torch.zeros(3, 9, 1, 1)  # 9 inputs, the stage has 8
    (tmp_path / "shape.pkl").write_bytes(repickle(snapshot))
    assert "no Table 9 preset's Config E has these tensor shapes" in _refused(capsys, tmp_path / "shape.pkl", tmp_path / "out")
    for role in ("G", "G_ema"):
        _aggregation(snapshot, role).state["_parameters"]["weight"] = torch.full((3, 8, 1, 1), float("nan"))
    (tmp_path / "nan.pkl").write_bytes(repickle(snapshot))
    assert "is not finite floating-point data" in _refused(capsys, tmp_path / "nan.pkl", tmp_path / "out")


def test_a_g_ema_only_snapshot_imports_for_sampling(tmp_path, capsys):
    snapshot = read_snapshot(CIFAR)
    (tmp_path / "g_ema.pkl").write_bytes(repickle(dict(G_ema=snapshot["G_ema"], cur_nimg=5000)))
    assert main(["import-official", str(tmp_path / "g_ema.pkl"), "--out", str(tmp_path / "run")]) == 0
    checkpoint = files.load_checkpoint(tmp_path / "run")
    assert "discriminator" not in checkpoint and checkpoint["nimg"] == 5000
    assert torch.equal(checkpoint["generator"]["to_rgb.0.weight"], checkpoint["generator_ema"]["to_rgb.0.weight"])
    assert files.read_json(tmp_path / "run" / "official.json")["networks"] == ["G_ema"]
    assert main(["generate", str(tmp_path / "run"), "--seeds", "0", "--class", "1", "--out", str(tmp_path / "images")]) == 0
    recorded = _outputs("cifar10_tiny")  # G_ema is the fixture's G_ema
    assert (_our_outputs_g_ema(tmp_path / "run", recorded) - recorded["G_ema"]).abs().max().item() <= 1e-6 * 10
    # fine-tuning needs D: refused before any job starts (and by the trainer, should it get there)
    from roadmap.config import resolve
    from roadmap.warm_start import load_initial_weights

    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    with pytest.raises(ConfigError, match="holds no discriminator"):
        resolve(dict(model="E", model_args=config["model_args"], init_from=str(tmp_path / "run")))
    pair = create_model("E", **config["model_args"])
    with pytest.raises(ConfigError, match="holds no discriminator"):
        load_initial_weights(tmp_path / "run", pair.generator, pair.discriminator, pair.generator)


def test_wrong_tensor_shape_is_refused(tmp_path):
    snapshot = read_snapshot(CIFAR)
    conv = snapshot["G_ema"].state["_modules"]["Model"].state["_modules"]["AggregationLayer"].state["_modules"]["Layer"]
    conv.state["_parameters"]["weight"] = torch.zeros(3, 9, 1, 1)  # 9 input channels where the stage has 8
    with pytest.raises(ConfigError, match="G and G_ema differ in tensor 'Model.AggregationLayer.Layer.weight'"):
        convert(snapshot)
    for role in ("G", "G_ema"):  # the same wrong shape on both: no Config E has it
        conv = snapshot[role].state["_modules"]["Model"].state["_modules"]["AggregationLayer"].state["_modules"]["Layer"]
        conv.state["_parameters"]["weight"] = torch.zeros(3, 9, 1, 1)
    with pytest.raises(ConfigError, match="no Table 9 preset's Config E has these tensor shapes"):
        convert(snapshot)


def test_other_mismatches(tmp_path, capsys):
    err = _refused(capsys, CIFAR, tmp_path / "out", "--preset", "imagenet32")
    assert "no Table 9 preset's Config E" in err  # 10 classes are not ImageNet's 1000
    assert "did you mean 'root'" in _refused(capsys, CIFAR, tmp_path / "out", "--data", "roott=/data")
    listed = tmp_path / "list.pkl"
    listed.write_bytes(pickle.dumps([1, 2, 3]))
    assert "not an R3GAN network snapshot" in _refused(capsys, listed, tmp_path / "out")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("x")
    assert main(["import-official", str(CIFAR), "--out", str(occupied)]) == 2
    assert sorted(p.name for p in occupied.iterdir()) == ["keep.txt"]


def test_tensors_with_python_attributes_are_read_as_plain_tensors():
    from roadmap.official import SnapshotUnpickler

    tensor = torch.arange(6.0).reshape(2, 3)[:, 1:]  # a view: offset and strides matter
    tensor.note = "attribute"  # pickled through torch._tensor._rebuild_from_type_v2
    read = SnapshotUnpickler(io.BytesIO(pickle.dumps(dict(t=tensor, p=torch.nn.Parameter(torch.ones(2)))))).load()
    assert torch.equal(read["t"], torch.tensor([[1.0, 2.0], [4.0, 5.0]])) and not hasattr(read["t"], "note")
    assert type(read["p"]) is torch.Tensor and torch.equal(read["p"], torch.ones(2))

    class EasyDict(dict):  # dnnlib.util.EasyDict, as StyleGAN-family kwargs are pickled
        def __getattr__(self, name):
            return self[name]

    with fake_modules(dnnlib={}, **{"dnnlib.util": dict(EasyDict=EasyDict)}):
        data = pickle.dumps(dict(kwargs=EasyDict(path="cifar10.zip", xflip=True)))
    read = SnapshotUnpickler(io.BytesIO(data)).load()
    assert read["kwargs"] == {"path": "cifar10.zip", "xflip": True} and type(read["kwargs"]).__module__ == "roadmap.official"


# ----------------------------------------------------------------------------------------------
# Safety: embedded code never runs.

def test_persistent_object_source_is_never_executed(tmp_path, capsys):
    marker = tmp_path / "written-by-module-source"
    source = f"with open({str(marker)!r}, 'w') as f:\n    f.write('pwned')\nclass Generator:\n    pass\n"

    def _reconstruct_persistent_obj(meta):  # what StyleGAN3's torch_utils.persistence does: exec the source
        namespace = {}
        exec(meta["module_src"], namespace)
        return namespace[meta["class_name"]]()

    class Persistent:
        def __reduce__(self):
            meta = dict(type="class", version=6, module_src=source, class_name="Generator", state={})
            return (_reconstruct_persistent_obj, (meta,))

    with fake_modules(**{"torch_utils": {}, "torch_utils.persistence": dict(_reconstruct_persistent_obj=_reconstruct_persistent_obj)}):
        data = pickle.dumps(dict(G=Persistent(), D=Persistent(), G_ema=Persistent()))
        pickle.loads(data)  # the payload is real: loading it the usual way writes the file
    assert marker.read_text() == "pwned"
    marker.unlink()
    (tmp_path / "persistent.pkl").write_bytes(data)
    err = _refused(capsys, tmp_path / "persistent.pkl", tmp_path / "out")
    assert "StyleGAN-style persistent class 'Generator'" in err
    assert not marker.exists() and "torch_utils.persistence" not in sys.modules
    # a user who has the official code importable: the pickle's torch_utils.persistence is still never called
    with fake_modules(**{"torch_utils": {}, "torch_utils.persistence": dict(_reconstruct_persistent_obj=_reconstruct_persistent_obj)}):
        err = _refused(capsys, tmp_path / "persistent.pkl", tmp_path / "out")
    assert "StyleGAN-style persistent class 'Generator'" in err and not marker.exists()


def test_storage_bytes_payload_is_never_executed(tmp_path, capsys):
    marker = tmp_path / "written-by-storage-bytes"

    class Evil:
        def __reduce__(self):
            return (exec, (f"with open({str(marker)!r}, 'w') as f: f.write('pwned')",))

    payload = pickle.dumps(Evil(), protocol=2)

    class Storage:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (payload,))

    data = pickle.dumps(dict(G=Storage(), D=None, G_ema=None))
    with contextlib.suppress(Exception):  # torch's own loader (weights_only=False) runs it
        torch.storage._load_from_bytes(payload)
    assert marker.read_text() == "pwned"
    marker.unlink()
    (tmp_path / "storage.pkl").write_bytes(data)
    err = _refused(capsys, tmp_path / "storage.pkl", tmp_path / "out")
    assert "a tensor storage is not plain tensor data" in err
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------
# Every command on an imported run.

def test_cli_import_then_generate_conditional(tmp_path, capsys):
    run = tmp_path / "official" / "cifar10"
    assert main(["import-official", str(CIFAR), "--out", str(run)]) == 0
    assert "Config E" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.yaml", "metrics.jsonl", "official.json",
                                                    "summary.json"]
    assert main(["generate", str(run), "--seeds", "0-3", "--out", str(tmp_path / "a")]) == 2  # conditional: --class needed
    assert "--class" in capsys.readouterr().err
    assert main(["generate", str(run), "--seeds", "0-3", "--class", "10", "--out", str(tmp_path / "a")]) == 2
    assert main(["generate", str(run), "--seeds", "0-3", "--class", "2", "--out", str(tmp_path / "a")]) == 0
    assert main(["generate", str(run), "--seeds", "2,3", "--class", "2", "--out", str(tmp_path / "b")]) == 0
    assert main(["generate", str(run), "--seeds", "2", "--class", "7", "--out", str(tmp_path / "c")]) == 0
    a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert a == ["grid-class2.png", "seed0000-class2.png", "seed0001-class2.png", "seed0002-class2.png", "seed0003-class2.png"]
    # deterministic per seed: seed 2 is the same image whichever seeds came with it
    assert (tmp_path / "a" / "seed0002-class2.png").read_bytes() == (tmp_path / "b" / "seed0002-class2.png").read_bytes()
    assert (tmp_path / "a" / "seed0001-class2.png").read_bytes() != (tmp_path / "a" / "seed0002-class2.png").read_bytes()
    assert (tmp_path / "c" / "seed0002-class7.png").read_bytes() != (tmp_path / "b" / "seed0002-class2.png").read_bytes()
    # the image is the EMA generator's on the official gen_images.py latent of the seed, converted as it converts
    import numpy as np
    from PIL import Image

    checkpoint = files.load_checkpoint(run)
    pair = create_model("E", **checkpoint["config"]["model_args"])
    pair.generator.load_state_dict(checkpoint["generator_ema"])
    z = torch.from_numpy(np.random.RandomState(2).randn(1, 64)).float()
    with torch.no_grad():
        image = pair.generator.eval()(z, torch.tensor([2]))
    expected = (image.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    assert (expected == np.asarray(Image.open(tmp_path / "a" / "seed0002-class2.png"))).all()
    assert main(["generate", str(run), "--seeds", "4294967296", "--class", "0", "--out", str(tmp_path / "d")]) == 2


def test_generate_mistakes(imported, tmp_path, capsys):
    run = imported["stackedmnist16_tiny"]
    assert main(["generate", str(run), "--seeds", "0-1", "--class", "1", "--out", str(tmp_path / "x")]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert main(["generate", str(run), "--seeds", "5-1", "--out", str(tmp_path / "x")]) == 2
    assert main(["generate", str(tmp_path), "--seeds", "0", "--out", str(tmp_path / "x")]) == 2
    assert main(["generate", str(run), "--seeds", "0-2", "--images", "grid", "--out", str(tmp_path / "g")]) == 0
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["grid.png"]
    from roadmap.config import resolve
    from roadmap.trainer import run as train_run

    toy = resolve(dict(model="toy_mlp", dataset="ring8", duration_kimg=0.128, tick_kimg=0.128, batch=64, eval_samples=64))
    assert train_run(toy, tmp_path / "toy")["status"] == "completed"
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "toy"), "--seeds", "0", "--out", str(tmp_path / "t")]) == 2
    assert "makes samples of shape (2,), not images" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_evaluation_commands_and_report(mnist_root, tmp_path, capsys):
    results = tmp_path / "results"
    run = results / "official" / "stackedmnist16"
    assert main(["import-official", str(MNIST16), "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval-stackedmnist", "--run", str(run), "--n", "300", "--data-root", str(mnist_root), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["n"] == 300 and 1 <= scored["modes"] <= 300 and scored["kl"] > 0
    assert main(["fid", "--run", str(run), "--features", "stackedmnist", "--n", "64"]) == 0
    fd = json.loads(capsys.readouterr().out)["fd_mnist_classifier"]
    assert fd > 0 and files.read_json(run / "fd_mnist_classifier.json")["fd_mnist_classifier"] == fd
    assert main(["metric", "--run", str(run), "--metric", "pr50k3", "--features", "stackedmnist", "--n", "64"]) == 0
    pr = json.loads(capsys.readouterr().out)
    assert 0 <= pr["precision"] <= 1 and 0 <= pr["recall"] <= 1 and pr["n"] == 64
    assert main(["metric", "--run", str(run), "--metric", "kid50k", "--features", "stackedmnist", "--n", "64"]) == 0
    assert json.loads(capsys.readouterr().out)["kid"] > 0
    assert "Unclaimed runs" not in (build_report(results, tmp_path / "report0")).read_text()  # imported runs are claimed
    # one of our own Config E runs on the same data set (as the trainer leaves it), listed beside the checkpoint
    ours = results / "table3" / "E_seed0"
    files.make_dirs(ours)
    files.write_text(ours / "config.yaml", yaml.safe_dump(dict(model="E", dataset="stackedmnist", feeds="table3", seed=0)))
    files.write_json(ours / "summary.json", dict(status="completed", kimg=512.0, metrics=dict(modes=998, kl=0.0412)))
    files.write_json(results / "table3" / "real" / "eval.json", dict(modes=1000, kl=0.0017, n=26000))
    # the reference beside them: its table3 Config E run and real-data score; its other Config E runs are not listed
    for experiment, modes in (("table3", 1000), ("groupnorm", 990)):
        theirs = results / "reference" / experiment / "E_seed1"
        files.make_dirs(theirs)
        files.write_text(theirs / "config.yaml", yaml.safe_dump(dict(model="E", dataset="stackedmnist", feeds=experiment, seed=1)))
        files.write_json(theirs / "summary.json", dict(status="completed", kimg=1200.0, metrics=dict(modes=modes, kl=0.0651)))
    files.write_json(results / "reference" / "table3" / "real" / "eval.json", dict(modes=1000, kl=0.0241, n=26000))
    assert main(["report", str(results), "--out", str(tmp_path / "report")]) == 0
    table = (tmp_path / "report" / "tables" / "official-checkpoints.md").read_text()
    assert "| real data (table3) | real data | stackedmnist | - | - | - | - | - | 1000 | 0.002 | - |" in table
    assert "| table3/E_seed0 | ours (Config E) | stackedmnist | 512.0 | - | - | - | - | 998 | 0.041 |" in table
    assert "| table3/E_seed1 | reference (Config E) | stackedmnist | 1200.0 | - | - | - | - | 1000 | 0.065 |" in table
    assert "| real data (table3) | real data, reference | stackedmnist | - | - | - | - | - | 1000 | 0.024 | - |" in table
    assert "groupnorm/" not in table
    row = next(line for line in table.splitlines() if line.startswith("| official/stackedmnist16"))
    assert "official checkpoint" in row and f"| {scored['modes']} |" in row and f"{scored['kl']:.3f}" in row
    # FD: eval-stackedmnist's (n = 300) wins over the 64-sample `fid --features stackedmnist` file, as its modes do
    assert row.endswith(f"| {scored['fd_mnist_classifier']:.3f} |") and f"{fd:.3f}" not in row
    assert "| paper (stackedmnist) | paper | stackedmnist | - | - | - | - | - | 1000 | 0.029 | - |" in table


def test_fine_tuning_starts_from_the_imported_weights(mnist_root, tmp_path, capsys, monkeypatch):
    source = tmp_path / "imported"
    assert main(["import-official", str(MNIST16), "--out", str(source)]) == 0
    config = yaml.safe_load((source / "config.yaml").read_text())
    experiment = dict(description="fine-tune", base=dict(
        model="E", model_args=config["model_args"], dataset="stackedmnist", dataset_args=dict(resolution=16, root=str(mnist_root)),
        preset="stackedmnist", batch=8, duration_kimg=0.008, tick_kimg=0.008, eval_samples=100, init_from=str(source)),
        seeds=[0], resources=dict(timeout_min=5, cpus_per_task=1))
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(experiment))
    assert main(["run", str(tmp_path / "ft.yaml"), "--out", str(tmp_path / "results"), "--no-progress"]) == 0
    run = tmp_path / "results" / "ft" / "seed0"
    assert files.read_json(run / "summary.json")["status"] == "completed"
    assert [row["kimg"] for row in files.read_jsonl(run / "metrics.jsonl")] == [0.008]  # kimg from zero: a start
    before, after = files.load_checkpoint(source), files.load_checkpoint(run)
    assert after["nimg"] == 8 and after["optimizer_G"]["state"][0]["step"].item() == 1  # fresh Adam, one step
    # One Adam step (beta1 = 0, lr 2e-4 at the start of Table 9's Stacked MNIST row) moves each weight by at most ~lr
    for key in ("generator", "discriminator"):
        moved = max((after[key][name] - before[key][name]).abs().max().item() for name in before[key])
        assert 1e-5 < moved <= 2.01e-4, key
    assert yaml.safe_load((run / "config.yaml").read_text())["init_from"] == str(source.resolve())
    from roadmap.config import resolve

    monkeypatch.chdir(tmp_path)  # a relative init_from is made absolute (jobs may start elsewhere)
    assert resolve(dict(experiment["base"], init_from="imported")).init_from == str(source.resolve())
    # generate works on our own runs too: the fine-tuned run's EMA generator
    assert main(["generate", str(run), "--seeds", "0-1", "--out", str(tmp_path / "ours")]) == 0
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["grid.png", "seed0000.png", "seed0001.png"]
    # A run of another architecture is refused before any job starts
    capsys.readouterr()
    assert main(["run", str(tmp_path / "ft.yaml"), "--out", str(tmp_path / "r2"), "model_args.blocks=2"]) == 2
    err = capsys.readouterr().err
    assert "init_from:" in err and "set the same model and model_args" in err


def test_paper_row_for_every_published_preset():
    """Every Table 9 preset has the paper's row: FID and recall for the five published checkpoints, modes and KL for
    Stacked MNIST (Tables 3-8 and Section 4's recall paragraph)."""
    from reports.official import PAPER
    from roadmap.presets import PRESETS

    assert set(PAPER) == set(PRESETS)
    assert {preset: sorted(numbers) for preset, numbers in PAPER.items()} == {
        **{preset: ["fid", "recall"] for preset in ("cifar10", "ffhq256", "ffhq64", "imagenet32", "imagenet64")},
        "stackedmnist": ["kl", "modes"]}
    assert [PAPER[p]["fid"] for p in ("cifar10", "ffhq64", "ffhq256", "imagenet32", "imagenet64")] == [1.96, 1.95, 2.75, 1.27, 2.09]
