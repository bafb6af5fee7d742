"""Precision/recall (k = 3) and KID on feature sets with known answers; VGG16 offline is one line (issue 26)."""
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from roadmap import recall
from roadmap.recall import FeaturesUnavailable, kernel_inception_distance, precision_recall
from runners.cli import main


def test_identical_sets_have_precision_and_recall_one():
    features = np.random.default_rng(0).standard_normal((300, 16))
    assert precision_recall(features, features.copy()) == dict(precision=1.0, recall=1.0)


def test_disjoint_sets_have_precision_and_recall_zero():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((200, 16))
    fake = rng.standard_normal((200, 16)) + 50.0
    assert precision_recall(real, fake) == dict(precision=0.0, recall=0.0)


def test_a_subset_has_recall_equal_to_its_fraction():
    rng = np.random.default_rng(2)
    modes = rng.integers(0, 10, 2000)  # 10 modes 100 units apart, spread 1
    real = rng.standard_normal((2000, 8)) + 100.0 * modes[:, None]
    fake = real[modes < 3]  # a subset: the real samples of 3 of the 10 modes
    result = precision_recall(real, fake)
    assert result["precision"] == 1.0  # every fake is a real sample
    # recall is the subset's share of the reals: 0.3 in expectation, binomial error sqrt(.3 * .7 / 2000) = 0.010
    assert result["recall"] == pytest.approx(len(fake) / len(real), abs=1e-6)
    assert abs(result["recall"] - 0.3) < 0.04


def test_fresh_samples_of_some_modes_have_recall_near_their_share():
    """Fakes drawn afresh (not copies) from 3 of 10 equally likely modes: recall is the reals' share in those modes
    within sampling error plus the k-NN estimator's small shortfall at a mode's edge (2-D: measured 0.004-0.014 over
    seeds 10-12); precision is high but below 1 (a fresh fake can fall just outside every real 3-NN ball)."""
    rng = np.random.default_rng(10)
    modes = rng.integers(0, 10, 2000)
    real = rng.standard_normal((2000, 2)) + 100.0 * modes[:, None]
    fake = rng.standard_normal((600, 2)) + 100.0 * rng.integers(0, 3, 600)[:, None]
    result = precision_recall(real, fake)
    share = float((modes < 3).mean())  # 0.3055 here; binomial error sqrt(.3 * .7 / 2000) = 0.010
    assert share - 0.03 < result["recall"] <= share + 0.005
    assert 0.93 < result["precision"] < 1.0


def test_k_is_three_nearest_neighbours():
    # real points on a line at 0, 1, 2, ..., 9: the 3rd nearest other point of 0 is at distance 3;
    # a fake at 3.0 lies within 0's ball (distance 3 <= 3), a fake at -3.5 outside every ball
    line = torch.arange(10.0)[:, None]
    assert recall.manifold_fraction(line, torch.tensor([[-3.0]])) == 1.0
    assert recall.manifold_fraction(line, torch.tensor([[-3.5]])) == 0.0
    assert recall.manifold_fraction(line, torch.tensor([[-3.0]]), k=2) == 0.0  # k = 2: radius 2


def test_kid_of_two_point_masses_is_the_kernel_distance():
    # all reals at 0, all fakes at 1, d = 1: k(0,0) + k(1,1) - 2 k(0,1) = 1 + 8 - 2 = 7 with k = (x.y + 1)^3
    real, fake = np.zeros((50, 1)), np.ones((60, 1))
    assert kernel_inception_distance(real, fake, subsets=3) == pytest.approx(7.0, abs=1e-12)


def test_kid_of_one_distribution_is_zero_within_sampling_error_and_matches_clean_fid():
    from cleanfid.fid import kernel_distance

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((400, 32)), rng.standard_normal((400, 32))
    same = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.02 and shifted > 0.5  # a unit shift in every one of 32 dims is far
    # one subset of all samples: no randomness left, clean-fid's estimator gives the same number
    assert kernel_inception_distance(a, b + 0.3, subsets=1, subset_size=400) == pytest.approx(
        kernel_distance(a, b + 0.3, num_subsets=1, max_subset_size=400), rel=1e-10)


def test_vgg16_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("R3BENCH_CACHE", str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(recall.urllib.request, "urlopen", offline)
    with pytest.raises(FeaturesUnavailable) as error:
        recall.vgg16_extractor("cpu")
    message = str(error.value)
    assert len(message.splitlines()) == 1 and "vgg16.pt" in message and str(tmp_path / "cache") in message
    assert not list((tmp_path / "cache").glob("*"))  # no partial file left behind


def test_metric_command_offline_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    from roadmap.official import import_snapshot

    import_snapshot(Path(__file__).resolve().parents[1] / "fixtures" / "official" / "cifar10_tiny.pkl", tmp_path / "run")
    monkeypatch.setenv("R3BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(recall.urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    assert main(["metric", "--run", str(tmp_path / "run"), "--metric", "pr50k3", "--n", "8"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("r3bench metric: VGG16 weights for precision/recall are unavailable")
    assert main(["metric", "--run", str(tmp_path / "run"), "--metric", "pr50k3", "--n", "2"]) == 2  # --n below 4


def test_kid_offline_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    """KID's Inception weights come through clean-fid; offline that is one line too, before any sample is drawn."""
    import cleanfid.fid

    from roadmap.official import import_snapshot

    import_snapshot(Path(__file__).resolve().parents[1] / "fixtures" / "official" / "cifar10_tiny.pkl", tmp_path / "run")
    monkeypatch.setattr(cleanfid.fid, "build_feature_extractor",
                        lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("[Errno -2] Name or service not known")))
    assert main(["metric", "--run", str(tmp_path / "run"), "--metric", "kid50k", "--n", "8"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("r3bench metric: ") and "Inception" in err
    assert not list((tmp_path / "run").glob("kid50k*.json"))


def test_real_images_for_pr_are_distinct_and_fakes_are_the_trainers_samples(monkeypatch):
    from roadmap import sampling
    from roadmap.trainer import generate

    class Images:  # an image data set of 10 images whose pixels all equal the image's index
        count = 10

        def uint8(self, index):
            return index.to(torch.uint8)[:, None, None, None].expand(len(index), 3, 2, 2)

    monkeypatch.setattr(sampling, "CHUNK", 3)
    real = torch.cat(list(sampling.real_chunks(Images(), 50)))
    assert len(real) == 10  # capped at the data set: no image twice (a repeat is its own nearest neighbour)
    assert sorted(((real[:, 0, 0, 0] + 1) * 127.5).round().int().tolist()) == list(range(10))
    assert len(torch.cat(list(sampling.real_chunks(Images(), 4)))) == 4
    generator = torch.nn.Linear(4, 6)
    chunks = list(sampling.fake_chunks(lambda z, labels: generator(z) + labels[:, None], 4, 5, 10, "cpu", batch=4))
    assert [len(chunk) for chunk in chunks] == [4, 4, 2]
    assert torch.equal(torch.cat(chunks), generate(lambda z, labels: generator(z) + labels[:, None], 4, 5, 10, "cpu", batch=4))
