"""Experiment files -> run specs, and the one-line errors for bad input (nothing written to results/)."""
import pytest

from roadmap.losses import list_objectives
from runners.cli import main
from runners.experiment import expand, load_experiment, parse_overrides, run_name


def test_toy_ablation_expands_to_its_full_grid(tmp_path):
    specs = expand(load_experiment("toy2d-ablation"), tmp_path)
    assert len(specs) == 3 * 2 * 2 * 2 * 3
    assert len({spec.run_dir for spec in specs}) == len(specs)
    first = specs[0]
    assert first.name == "25gaussians_gan_r1_lazy1_seed0"
    assert first.config.model == "toy_mlp" and first.config.penalties == ["r1"]


def test_runs_come_seed_by_seed_so_a_cut_experiment_leaves_whole_pairs(tmp_path):
    names = [spec.name for spec in expand(load_experiment("lazy-reg-25gaussians"), tmp_path)]
    assert names[:4] == ["lazy1_seed0", "lazy8_seed0", "lazy1_seed1", "lazy8_seed1"] and len(names) == 10


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
    assert resources_for(experiment, "paper")["gpus_per_node"] == 8  # Table 9: 8 GPUs for Stacked MNIST
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


# ---- pre-flight: model options, loss filled in, reliability list (issues 12, 13, 16) ----

def _models():
    from roadmap.registry import list_models

    return list_models()


# A valid key of each configuration and its misspelling (the closest name must be the valid one).
MISSPELT = {"toy_mlp": ("hiden", "hidden"), "small_resnet": ("widht", "width")}


@pytest.mark.parametrize("model", _models())
def test_misspelt_model_args_key_fails_the_dry_run_naming_the_closest(tmp_path, capsys, model):
    bad, good = MISSPELT.get(model, ("widht", "width"))
    text = f"base: {{model: {model}, model_args: {{{bad}: 1}}}}\n"
    out = tmp_path / "results"
    assert main(["run", write(tmp_path, text), "--dry-run", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"model_args: unknown option of configuration {model} '{bad}' (did you mean '{good}'?)" in err
    assert err.count("\n") == 1 and "Traceback" not in err and "TypeError" not in err
    assert not any(private + "()" in err for private in ("_toy_mlp", "_small_resnet", "_stylegan2", "_stripped", "_resnet"))


def test_table3_width_typo_on_the_command_line_is_refused(tmp_path, capsys):
    assert main(["run", "table3", "model_args.widht=0.5", "--dry-run", "--out", str(tmp_path / "r")]) == 2
    assert "unknown option of configuration E 'widht' (did you mean 'width'?)" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("base: {model: toy_mlp, model_args: {hidden: 0}}\n", "model_args.hidden: must be an integer >= 1, got 0"),
    ("base: {model: toy_mlp, model_args: {hidden: -4}}\n", "model_args.hidden: must be an integer >= 1, got -4"),
    ("base: {model: toy_mlp, model_args: {latent_dim: sixteen}}\n", "model_args.latent_dim: must be an integer >= 1, got 'sixteen'"),
    ("base: {model: small_resnet, model_args: {width: -8}}\n", "model_args.width: must be an integer >= 1, got -8"),
    ("base: {model: small_resnet, model_args: {latent_dim: 0}}\n", "model_args.latent_dim: must be an integer >= 1, got 0"),
    ("base: {model: E, model_args: {preset: stackedmnist, width: 0}}\n", "model_args: width: must be a number > 0, got 0"),
    ("base: {model: E, model_args: {preset: stackedmnist, latent_dim: -1}}\n", "model_args: latent_dim: must be an integer >= 1"),
    ("base: {model: B, model_args: {preset: stackedmnist, width: '0.5'}}\n", "model_args: width: must be a number > 0, got '0.5'"),
    ("base: {model: A, model_args: {preset: stackedmnist, z_dim: -5}}\n", "model_args: z_dim: must be an integer >= 1, got -5"),
])
def test_bad_model_sizes_fail_the_dry_run_in_one_line(tmp_path, capsys, text, message):
    assert main(["run", write(tmp_path, text), "--dry-run", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_run_specs_carry_the_configurations_own_loss_as_the_trainer_writes_it(tmp_path):
    import dataclasses

    from roadmap.registry import create_model

    (spec,) = expand(load_experiment("table3"), tmp_path, overrides={"seeds": [0]})
    assert (spec.config.loss, spec.config.penalties, spec.config.lazy_interval) == ("rpgan", ["r1", "r2"], 1)
    pair = create_model(spec.config.model, **spec.config.model_args)
    written = dict(dataclasses.asdict(spec.config), **spec.config.resolved_loss(pair.loss_spec).as_dict())  # roadmap/trainer.py config.yaml
    assert dataclasses.asdict(spec.config) == written
    a = expand(load_experiment(write(tmp_path, "base: {model: A, model_args: {preset: stackedmnist, width: 0.03}}\n")), tmp_path)
    assert (a[0].config.loss, a[0].config.penalties, a[0].config.lazy_interval) == ("gan", ["r1"], 16)
    # a value the experiment sets stays
    toy = expand(load_experiment("toy2d-ablation"), tmp_path, overrides={"seeds": [0]})
    assert {spec.config.lazy_interval for spec in toy} == {1, 8}


def test_run_names_keep_configuration_names_intact():
    assert run_name({"model": "E_R1", "dataset": "ring8"}, 0) == "E_R1_ring8_seed0"
    assert run_name({"model": "small_resnet"}, 1) == "small_resnet_seed1"


@pytest.mark.parametrize("text, message", [
    ("base: {}\ninclude: [7]\n", "include: expected names of experiments, got 7"),
    ("base: {}\nanalyses: 3\n", "analyses: expected a mapping or a list of names, got 3"),
    ("base: {}\nanalyses: {dirac: 3}\n", "analyses.dirac: expected a mapping of options, got 3"),
    ("base: {}\nanalyses: {dirac: {gamma: big}}\n", "analyses.dirac.gamma: expected a number, got 'big'"),
    ("base: {}\nanalyses: {dirac: {gamma: -1}}\n", "analyses.dirac.gamma: must be >= 0.0, got -1"),
    ("base: {}\nanalyses: {stackedmnist_real: {n: 0}}\n", "analyses.stackedmnist_real.n: must be an integer >= 1"),
    ("base: {}\npresets: {cpu: {}}\ndefault_preset: [cpu]\n", "default_preset: expected a preset name, got ['cpu']"),
    ("base: {lr: .nan}\n", "lr: must be a finite number, got nan"),
    ("base: {gamma: .nan}\n", "gamma: must be a finite number, got nan"),
    ("base: {gamma: [1.0, .nan]}\n", "gamma: must be a finite number"),
    ("base: {duration_kimg: .inf}\n", "duration_kimg: must be a finite number, got inf"),
    ("base: {divergence_grad_norm: .nan}\n", "divergence_grad_norm: must be a finite number, got nan"),
    ("base: {ema_half_life_kimg: .inf}\n", "ema_half_life_kimg: must be a finite number, got inf"),
    ("base: {duration_kimg: 1.0e-9}\n", "duration_kimg: 1e-09 kimg is shorter than one batch of 64 images"),
    ("base: {}\nseeds: [9223372036854775808]\n", "seeds: expected integers >= 0 and < 2**63"),
    ("base: {}\nseeds: []\n", "seeds: the list is empty and nothing is included"),
    ("base: {}\ngrid: {seed: [0, 1]}\n", "grid.seed: seeds are not a grid axis; list them under `seeds:`"),
    ("base: {seed: 3}\n", "base.seed: set seeds with the top-level `seeds:` list"),
    ("base: {gamma: 1}\nbase: {gamma: 10}\n", "line 2: duplicate key 'base'"),
    ("base:\n  gamma: 1\n  lr: 0.001\n  gamma: 10\n", "line 4: duplicate key 'gamma'"),
])
def test_reliability_list_fails_in_one_line(tmp_path, capsys, text, message):
    out = tmp_path / "results"
    assert main(["run", write(tmp_path, text), "--dry-run", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_include_cycles_and_binary_files_fail_in_one_line(tmp_path, capsys):
    self_including = write(tmp_path, "base: {}\nseeds: []\ninclude: [{}]\n".replace("{}]", f"{tmp_path / 'exp.yaml'}]"))
    assert main(["run", self_including, "--dry-run"]) == 2
    assert "includes itself" in capsys.readouterr().err
    write(tmp_path, f"base: {{}}\nseeds: []\ninclude: [{tmp_path / 'b.yaml'}]\n", "a.yaml")
    write(tmp_path, f"base: {{}}\nseeds: []\ninclude: [{tmp_path / 'a.yaml'}]\n", "b.yaml")
    assert main(["run", str(tmp_path / "a.yaml"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "includes itself (directly or through another file)" in err and err.count("\n") == 1
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81base: {}\n")
    assert main(["run", str(binary), "--dry-run"]) == 2
    assert "binary.yaml: not a text (UTF-8) file" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--dry-run"]) == 2
    assert "is a folder, not a YAML file" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["seeds=[]"], "seeds: an empty list leaves no run to do"),
    (["seed=3"], "override seed: every run would get this seed under its own seed<N> name; use seeds=[3]"),
    (["lr=.nan"], "lr: must be a finite number, got nan"),
    (["duration_kimg=1e-9"], "duration_kimg: 1e-09 kimg is shorter than one batch of 128 images"),
    (["seeds=[18446744073709551616]"], "seed: must be an integer <= 9223372036854775807"),
    (["model_args.hidden=0"], "model_args.hidden: must be an integer >= 1, got 0"),
    (["loss=gan", "gamma"], "override 'gamma': expected key=value"),
])
def test_odd_overrides_fail_in_one_line(tmp_path, capsys, argv, message):
    assert main(["run", "toy2d-ablation", *argv, "--dry-run", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_exponent_numbers_are_numbers_in_overrides_and_files(tmp_path):
    assert parse_overrides(["lr=1e-3", "gamma=[1e-1, 2E2]", "loss=gan"]) == {"lr": 0.001, "gamma": [0.1, 200.0], "loss": "gan"}
    (spec,) = expand(load_experiment(write(tmp_path, "base: {lr: 1e-3, gamma: 5e0}\n")), tmp_path)
    assert spec.config.lr == 0.001 and spec.config.gamma == 5.0


# ---- extends: the shared cpu preset is written once (issue 13) ----

# table1's and table3's first cpu runs as resolved before the shared block moved into
# runners/experiments/_stackedmnist_cpu.yaml (extends:); the move must change nothing (since then
# both presets also score coverage every 2 ticks on 1,000 samples).
CPU_COMMON = dict(augment_p=0.0, batch=64, beta2=[0.9, 0.99], burn_in_kimg=12, checkpoint_ticks=5, dataset="stackedmnist",
                  dataset_args={"resolution": 16}, device="cpu", divergence_grad_norm=10000.0, duration_kimg=40,
                  ema_half_life_kimg=[0, 5], eval_samples=None, gamma=[1.0, 0.1], grad_scaler=False, lazy_interval=1,
                  logger="jsonl", loss="rpgan", lr=0.0005, penalties=["r1", "r2"], preset=None, score_samples=1000,
                  score_ticks=2, seed=0, tf32=False, threads=1, tick_kimg=4, xflip=False, init_from=None,
                  batch_gpu=None, batch_gpu_G=None, cudnn_benchmark=True, data_workers=0, data_prefetch=2)  # fields added since (issues 22, 26), at their defaults


@pytest.mark.parametrize("name, first", [
    # table1's cpu preset runs 1,200 kimg in 20-kimg ticks since 2026-12-02 (the measured learning curve, issue 25)
    ("table1", dict(CPU_COMMON, feeds="table1", model="small_resnet", model_args={"blocks": 1, "resolution": 16, "width": 32},
                    duration_kimg=1200, tick_kimg=20)),
    # table3's cpu preset is an 8-kimg smoke test since 2026-12-02 (issue 25: cut to a few minutes)
    ("table3", dict(CPU_COMMON, feeds="table3", model="E", model_args={"preset": "stackedmnist", "resolution": 16, "width": 0.03125},
                    duration_kimg=8, burn_in_kimg=4, tick_kimg=2, checkpoint_ticks=2)),
])
def test_shared_cpu_preset_leaves_resolved_configs_unchanged(tmp_path, name, first):
    import dataclasses

    specs = expand(load_experiment(name), tmp_path)
    assert dataclasses.asdict(specs[0].config) == first
    assert len(specs) == (20 if name == "table1" else 3)  # table1: 4 losses x 5 seeds
    assert {spec.config.lr for spec in expand(load_experiment(name), tmp_path, scale="paper")} == {2e-4}  # Table 9, not the cpu lr


def test_extends_merges_the_parent_under_the_file_and_refuses_cycles(tmp_path, capsys):
    from runners.experiment import bundled_experiments

    assert "_stackedmnist_cpu" not in bundled_experiments() and "table1" in bundled_experiments()
    write(tmp_path, "base: {model: toy_mlp, gamma: 3.0}\npresets: {cpu: {lr: 1.0e-3, batch: 32}}\nresources: {mem_gb: 4}\n", "parent.yaml")
    child = write(tmp_path, f"extends: {tmp_path / 'parent.yaml'}\nbase: {{lr: 5.0e-4}}\npresets: {{cpu: {{batch: 16}}}}\n"
                            "default_preset: cpu\n", "child.yaml")
    experiment = load_experiment(child)
    assert experiment.base == {"model": "toy_mlp", "gamma": 3.0, "lr": 5.0e-4} and experiment.resources == {"mem_gb": 4}
    (spec,) = expand(experiment, tmp_path)
    assert (spec.config.lr, spec.config.batch, spec.config.gamma) == (1.0e-3, 16, 3.0)  # the preset still beats base
    write(tmp_path, f"extends: {tmp_path / 'loop.yaml'}\nbase: {{}}\n", "loop.yaml")
    assert main(["run", str(tmp_path / "loop.yaml"), "--dry-run"]) == 2
    assert "extends this file again (a cycle)" in capsys.readouterr().err
    assert main(["run", write(tmp_path, "extends: 5\nbase: {}\n"), "--dry-run"]) == 2
    assert "extends: expected the name or path of an experiment file, got 5" in capsys.readouterr().err


@pytest.mark.parametrize("model", _models())
def test_every_registered_configuration_builds_on_meta_with_its_defaults(model):
    from runners.experiment import build_on_meta

    pair = build_on_meta(model, {})
    assert pair.loss_spec.loss in list_objectives() and set(pair.loss_spec.penalties) <= {"r1", "r2"}
    assert all(p.is_meta for p in pair.generator.parameters())


# ---- one word per meaning (issue 21): a *scale* is an experiment's variant, a *preset* a Table 9 column ----

@pytest.mark.parametrize("scales, default", [("scales", "default_scale"), ("presets", "default_preset")])  # the old keys still read
def test_an_experiments_scales_pick_overrides_and_resources(tmp_path, scales, default):
    path = write(tmp_path, f"base: {{model: toy_mlp, lr: 1.0e-3}}\n{scales}: {{cpu: {{batch: 32}}, paper: {{batch: 128, "
                           f"resources: {{gpus_per_node: 1}}}}}}\n{default}: cpu\n")
    experiment = load_experiment(path)
    assert sorted(experiment.scales) == ["cpu", "paper"] and experiment.default_scale == "cpu"
    assert [spec.config.batch for spec in expand(experiment, tmp_path)] == [32]
    assert [spec.config.batch for spec in expand(experiment, tmp_path, scale="paper")] == [128]


def test_old_and_new_names_of_one_setting_are_refused_together(tmp_path, capsys):
    path = write(tmp_path, "base: {model: toy_mlp}\npresets: {cpu: {}}\nscales: {cpu: {}}\n")
    assert main(["run", path, "--dry-run", "--out", str(tmp_path)]) == 2
    assert "presets and scales are one setting" in capsys.readouterr().err


def test_the_scale_flag_and_its_old_spelling_choose_the_same_runs(tmp_path, capsys):
    outputs = []
    for flag, scale in (("--scale", "paper"), ("--preset", "paper"), ("--scale", "cpu")):  # --preset: the old spelling
        assert main(["run", "toy2d-ablation", flag, scale, "--dry-run", "--out", str(tmp_path)]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] != outputs[2]


def test_paper_scales_set_the_table_9_preset_once_and_every_row_builds_it(tmp_path):
    for spec in expand(load_experiment("table2"), tmp_path, scale="paper", check_data=False):
        assert spec.config.preset == "ffhq256" and spec.config.model_args["preset"] == "ffhq256"
        assert spec.config.dataset_args == {"preset": "ffhq256"}  # imagefolder inherits it too
