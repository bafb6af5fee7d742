"""`r3bench params` and `r3bench bench` (the CLI contract) and the benchmark's iteration."""
import json

from runners.cli import main


def test_params_json_is_the_official_count(capsys):
    assert main(["params", "--config", "E", "--preset", "stackedmnist", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"G": 20_732_160, "D": 20_683_776}


def test_params_bad_input_exits_2(capsys):
    assert main(["params", "--config", "Z", "--preset", "ffhq256", "--json"]) == 2
    assert main(["params", "--config", "E", "--preset", "ffhq128", "--json"]) == 2
    assert main(["params", "--config", "E", "--width", "-1", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "configuration 'Z'" in err[0] and "preset" in err[1] and "width" in err[2]


def test_bench_json_keys(capsys):
    args = ["bench", "--config", "A", "--preset", "stackedmnist", "--width", "0.03", "--batch", "2",
            "--steps", "1", "--warmup", "1", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"config", "preset", "img_per_s", "sec_per_iter", "G_params", "D_params", "peak_mem_mb", "device"} <= set(result)
    assert abs(result["img_per_s"] * result["sec_per_iter"] - 2) < 1e-9  # batch 2 per iteration
    assert result["config"] == "A" and result["device"] == "cpu" and result["G_params"] > 0


def test_fid_command_with_feature_network(tmp_path, capsys, monkeypatch):
    """A finished toy run folder: the fid command loads its EMA generator and scores it."""
    import torch
    import yaml
    from PIL import Image

    from roadmap import files
    from roadmap import fid
    from roadmap.registry import create_model

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(8):
        Image.fromarray((torch.rand(32, 32, 3) * 255).to(torch.uint8).numpy()).save(folder / f"{index}.png")
    model_args = dict(preset="stackedmnist", width=0.03)
    config = dict(model="E", model_args=model_args, dataset="imagefolder", dataset_args=dict(path=str(folder)))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    pair = create_model("E", **model_args)
    files.save_checkpoint(run, dict(generator_ema=pair.generator.state_dict()))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    monkeypatch.setitem(fid._feature_networks, "tiny", ("fd_tiny", lambda: (lambda x: net(x))))
    assert main(["fid", "--run", str(run), "--features", "tiny", "--n", "16"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"fd_tiny", "n"} and result["n"] == 16 and result["fd_tiny"] > 0
    assert files.read_json(run / "fd_tiny.json") == result
    assert main(["fid", "--run", str(tmp_path)]) == 2


def test_fid_refuses_n_below_2_and_toy_runs_in_one_line(tmp_path, capsys):
    import yaml

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(dict(model="toy_mlp", dataset="25gaussians")))
    assert main(["fid", "--run", str(run), "--n", "0"]) == 2  # used to mean "the default 10,000"
    err = capsys.readouterr().err
    assert "--n: must be an integer >= 2, got 0" in err and err.count("\n") == 1
    assert main(["fid", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert "FID needs an image data set" in err and "'25gaussians' (a toy mixture" in err and err.count("\n") == 1


def test_bench_and_params_refuse_absurd_widths_before_allocating(capsys):
    assert main(["bench", "--config", "E", "--preset", "stackedmnist", "--width", "1e9", "--json"]) == 2
    err = capsys.readouterr().err
    assert "--width: 1e+09 makes tensors too large" in err and err.count("\n") == 1
    assert main(["bench", "--config", "E", "--preset", "stackedmnist", "--width", "10", "--json"]) == 2
    err = capsys.readouterr().err  # 1,906,014,720 + 1,905,530,880 parameters at width 10
    assert "--width: 10 gives 3,811,545,600 parameters (G + D), beyond the 2,000,000,000" in err and err.count("\n") == 1
    assert main(["params", "--config", "E", "--preset", "stackedmnist", "--width", "1e9", "--json"]) == 2
    assert "--width: 1e+09 makes tensors too large" in capsys.readouterr().err
