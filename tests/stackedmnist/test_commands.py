"""`r3bench eval-stackedmnist`: JSON for real data and for a run folder; one-line errors."""
import json

from roadmap.config import resolve
from roadmap.trainer import run
from runners.cli import main


def test_real_json(mnist_root, capsys):
    assert main(["eval-stackedmnist", "--real", "--n", "2000", "--data-root", str(mnist_root), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2000 and result["source"] == "real"
    # 2000 uniform draws over 1000 modes cover 1000 (1 - e^-2) = 865 modes on average.
    assert 830 <= result["modes"] <= 900
    assert 0.2 < result["kl"] < 0.5 and result["classifier_accuracy"] >= 0.99
    # Real digits pass the quality gate (each of its 3 tests rejects 0.5% of real channels): fraction ~0.95.
    assert 0.9 < result["recognisable_fraction"] < 0.99 and result["modes"] - 40 <= result["recognisable_modes"] <= result["modes"]


def test_real_plain_text_is_one_line(mnist_root, capsys):
    assert main(["eval-stackedmnist", "--real", "--n", "500", "--data-root", str(mnist_root)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("real: ") and "modes of 1000" in out and "recognisable (quality gate)" in out and "\n" not in out


def test_run_json_matches_the_trainers_own_evaluation(mnist_root, tmp_path, capsys):
    config = resolve(dict(model="small_resnet", model_args=dict(width=8, blocks=1, resolution=8),
                          dataset="stackedmnist", dataset_args=dict(root=str(mnist_root), resolution=8),
                          batch=16, duration_kimg=0.032, tick_kimg=0.016, eval_samples=300, threads=1))
    summary = run(config, tmp_path / "run")
    assert summary["status"] == "completed", summary.get("reason")
    assert main(["eval-stackedmnist", "--run", str(tmp_path / "run"), "--n", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 300 and result["resolution"] == 8
    assert result["modes"] == summary["metrics"]["modes"] and result["kl"] == summary["metrics"]["kl"]
    assert (tmp_path / "run" / "samples" / "final.png").exists()


def test_user_mistakes_exit_2_with_one_line(mnist_root, tmp_path, monkeypatch, capsys):
    assert main(["eval-stackedmnist", "--run", str(tmp_path / "missing"), "--json"]) == 2
    assert "--run" in capsys.readouterr().err
    monkeypatch.delenv("R3BENCH_DATA", raising=False)
    assert main(["eval-stackedmnist", "--real", "--json"]) == 2
    error = capsys.readouterr().err.strip()
    assert "R3BENCH_DATA" in error and "\n" not in error


def test_missing_run_folder_fails_before_the_classifier_is_loaded(tmp_path, monkeypatch, capsys):
    """A mistyped --run must not first train the classifier for minutes (issue 16)."""
    from stackedmnist import classifier

    calls = []
    monkeypatch.setattr(classifier, "load_classifier", lambda *args, **kwargs: calls.append(args))
    assert main(["eval-stackedmnist", "--run", str(tmp_path / "missing"), "--json"]) == 2
    err = capsys.readouterr().err
    assert "--run: no run folder" in err and err.count("\n") == 1 and calls == []


def test_first_use_training_says_what_it_does_and_how_long(tmp_path, monkeypatch, capsys):
    from stackedmnist import classifier

    model = classifier.DigitClassifier(classifier.RECIPE["widths"])
    model.train_seconds, model.test_accuracy = 151.2, 0.9912
    monkeypatch.setattr(classifier, "weights_path", lambda: tmp_path / "classifier.pt")
    monkeypatch.setattr(classifier, "train_classifier", lambda root, progress=True: model)
    monkeypatch.setattr(classifier, "save_classifier", lambda model, path: None)
    monkeypatch.setattr(classifier, "_loaded", {})
    assert classifier.load_classifier() is model
    before, after = capsys.readouterr().err.strip().splitlines()
    assert before == f"training the Stacked MNIST mode classifier on MNIST (first use, ~3 min on 2 cores) into {tmp_path / 'classifier.pt'}"
    assert after == "trained the mode classifier in 151 s (MNIST test accuracy 0.9912)"
