"""Experiment files -> run specs, and the one-line errors for bad input (nothing written to results/)."""
import pytest

from runners.cli import main
from runners.experiment import expand, load_experiment, parse_overrides, run_name


def test_toy_ablation_expands_to_its_full_grid(tmp_path):
    specs = expand(load_experiment("toy2d-ablation"), tmp_path)
    assert len(specs) == 3 * 2 * 2 * 2 * 3
    assert len({spec.run_dir for spec in specs}) == len(specs)
    first = specs[0]
    assert first.name == "25gaussians_gan_r1_lazy1_seed0"
    assert first.config.model == "toy_mlp" and first.config.penalties == ["r1"]


def test_quick_includes_the_toy_ablation_below_its_own_folder(tmp_path):
    specs = expand(load_experiment("quick"), tmp_path)
    assert len(specs) == 72 and all(spec.experiment == "quick/toy2d-ablation" for spec in specs)


def test_overrides_fix_grid_axes_and_seeds(tmp_path):
    overrides = parse_overrides(["loss=gan", "seeds=[4]", "duration_kimg=1", "model_args.hidden=8"])
    specs = expand(load_experiment("toy2d-ablation"), tmp_path, overrides=overrides)
    assert len(specs) == 3 * 2 * 2
    assert all(s.config.loss == "gan" and s.config.seed == 4 and s.config.duration_kimg == 1 for s in specs)
    assert specs[0].config.model_args == {"hidden": 8} and specs[0].name.endswith("_gan_r1_lazy1_seed4")


def test_run_name_formats_lists_and_numbers():
    assert run_name({"dataset": "ring8", "penalties": ["r1", "r2"], "lazy_interval": 8, "gamma": 0.1}, 2) == \
        "ring8_r1+r2_lazy8_gamma0.1_seed2"


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("base: {model: toy_mlp\n  dataset: [", "malformed YAML"),
    ("base: {}\ngrdi: {}\n", "unknown key 'grdi' (did you mean 'grid'?)"),
    ("base: {gama: 1}\n", "unknown key 'gama' (did you mean 'gamma'?)"),
    ("base: {model: toy_mlpp}\n", "unknown configuration 'toy_mlpp' (did you mean 'toy_mlp'?)"),
    ("base: {dataset: ring9}\n", "unknown data set 'ring9' (did you mean 'ring8'?)"),
    ("base: {gamma: -1}\n", "gamma: must be >= 0"),
    ("base: {}\ngrid: {loss: gan}\n", "grid.loss: expected a non-empty list"),
    ("base: {}\nresources: {timeout_min: 0}\n", "resources.timeout_min: must be >= 1"),
    ("base: {}\nresources: {gpus: 1}\n", "unknown key 'gpus'"),
    ("base: {}\nresources: {cpus_per_task: two}\n", "resources.cpus_per_task: expected int, got 'two'"),
    ("base: {}\nresources: {tasks_per_node: 0}\n", "resources.tasks_per_node: must be >= 1"),
    ("base: {}\nresources: {mem_gb: -4}\n", "resources.mem_gb: must be >= 1"),
    ("base: {}\nresources: {partition: 3}\n", "resources.partition: expected str, got 3"),
    ("base: {}\nresources: {array_parallelism: true}\n", "resources.array_parallelism: expected int, got True"),
    ("base: {}\nresources: [timeout_min]\n", "resources: expected a dict"),
    ("base: {}\nseeds: [-1]\n", "seeds: expected integers >= 0"),
])
def test_bad_experiment_files_fail_in_one_line_before_any_run(tmp_path, capsys, text, message):
    out = tmp_path / "results"
    assert main(["run", write(tmp_path, text), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "toy2d-ablaton"], "unknown experiment 'toy2d-ablaton' (did you mean 'toy2d-ablation'?)"),
    (["run", "toy2d-ablation", "gamma=-2"], "gamma: must be >= 0"),
    (["run", "toy2d-ablation", "lr=0"], "lr: must be > 0"),
    (["run", "toy2d-ablation", "seeds=x"], "seed: must be an integer >= 0, got 'x'"),
    (["run", "toy2d-ablation", "losss=gan"], "unknown key 'losss' (did you mean 'loss'?)"),
    (["run", "toy2d-ablation", "loss=wgan"], "unknown loss 'wgan'"),
    (["run", "toy2d-ablation", "--preset", "gpu"], "unknown preset of experiment"),
    (["run", "missing.yaml"], "does not exist"),
])
def test_bad_command_lines_fail_in_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "results"
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_dry_run_lists_runs_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", "quick", "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "72 runs" in printed and "analysis dirac" in printed
    assert not out.exists()


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    for name in ("toy_mlp", "25gaussians", "ring8", "circle", "line", "quick", "toy2d-ablation", "stackedmnist"):
        assert name in printed


def test_seed_override_reaches_includes_and_gathering_experiments_have_no_runs_of_their_own(tmp_path):
    specs = expand(load_experiment("quick"), tmp_path, overrides={"seeds": [0]})
    assert len(specs) == 24 and {spec.config.seed for spec in specs} == {0}
    assert all(spec.experiment == "quick/toy2d-ablation" for spec in specs)


def test_overrides_may_follow_options(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", "toy2d-ablation", "--dry-run", "--out", str(out), "loss=gan", "seeds=[1]"]) == 0
    assert "12 runs" in capsys.readouterr().out


def test_missing_data_root_fails_before_any_job(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("R3BENCH_DATA", raising=False)
    out = tmp_path / "results"
    assert main(["run", "table1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "dataset_args.root: no MNIST root given" in err and err.count("\n") == 1
    assert not out.exists()


def test_preset_resources_override_the_experiment_resources():
    from runners.experiment import resources_for

    experiment = load_experiment("table3")
    assert resources_for(experiment, "paper")["gpus_per_node"] == 1
    assert resources_for(experiment, "cpu").get("gpus_per_node", 0) == 0
    assert resources_for(experiment)["timeout_min"] == 120


def test_summary_groups_runs_by_variant_and_counts_failures(tmp_path):
    from roadmap import files
    from runners.summary import summarize, variant_name

    assert variant_name("ring8_rpgan_r1_lazy8_seed2") == "ring8_rpgan_r1_lazy8" and variant_name("seed0") == "(all)"
    specs = expand(load_experiment("toy2d-ablation"), tmp_path, overrides={"dataset": "ring8", "loss": "gan",
                                                                          "penalties": ["r1"], "lazy_interval": 1})
    outcomes = [dict(status="completed", metrics=dict(modes=8, kl=0.1)), dict(status="completed", metrics=dict(modes=6, kl=0.3)),
                dict(status="diverged", metrics={})]
    for spec, outcome in zip(specs, outcomes):
        files.write_json(spec.run_dir / "summary.json", outcome)
    (row,) = summarize(specs)
    assert row["variant"] == "ring8_gan_r1_lazy1" and row["diverged"] == "1/3" and row["failed"] == "0/3"
    assert row["modes"] == "7±1.4" and row["kl"] == "0.2±0.14"
