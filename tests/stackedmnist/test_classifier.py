"""The MNIST mode classifier: cached by recipe hash outside the data folder, >= 99% test accuracy,
and the k-mode known answers read through it (trains once, ~1-2 min on 2 cores, when not cached)."""
import json
import math

import pytest
import torch

from stackedmnist import classifier
from stackedmnist.data import StackedMNIST, load_mnist
from stackedmnist.metrics import modes_from_digits, stacked_mnist_metrics


@pytest.fixture(scope="module")
def model(mnist_root_module):
    return classifier.load_classifier(str(mnist_root_module), progress=False)


@pytest.fixture(scope="module")
def mnist_root_module():
    import os
    from pathlib import Path

    root = os.environ.get("R3BENCH_DATA")
    if not root or not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.skip("R3BENCH_DATA does not point at a folder holding MNIST/raw")
    return Path(root)


def test_cached_by_recipe_hash_with_accuracy_beside_the_weights(model, mnist_root_module):
    path = classifier.weights_path()
    assert path.exists() and classifier.recipe_hash() in path.name
    assert mnist_root_module.resolve() not in path.resolve().parents  # never in the data folder
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["recipe"] == json.loads(json.dumps(classifier.RECIPE))
    assert record["test_accuracy"] == model.test_accuracy >= 0.99
    assert model.test_accuracy_low_res >= 0.98
    # The stored accuracy is the weights' real accuracy on the MNIST test split.
    digits, labels = load_mnist(str(mnist_root_module), train=False)
    assert classifier.accuracy(model, digits[:2000], labels[:2000]) >= 0.985


def test_k_fixed_stacked_images_read_as_k_modes(model, mnist_root_module):
    data = StackedMNIST(str(mnist_root_module))
    images, modes = data.sample_with_modes(400, torch.Generator().manual_seed(1))
    read = modes_from_digits(classifier.classify(images, model))
    assert (read == modes).float().mean() >= 0.97  # three digits right per sample
    correct = images[read == modes]
    # A generator that only reproduces k fixed stacked images (distinct modes), evenly.
    distinct = {}
    for image, mode in zip(correct, modes[read == modes].tolist()):
        distinct.setdefault(mode, image)
    for k in (10, 100):
        fixed = torch.stack(list(distinct.values())[:k])
        generated = fixed.repeat(26, 1, 1, 1)
        result = stacked_mnist_metrics(modes_from_digits(classifier.classify(generated, model)))
        assert result["modes"] == k
        assert result["kl"] == pytest.approx(math.log(1000 / k), abs=1e-9)


def test_features_are_the_penultimate_layer_per_channel(model, mnist_root_module):
    images, _ = StackedMNIST(str(mnist_root_module), resolution=16).sample(6, torch.Generator().manual_seed(0))
    feats = classifier.features(images, model)
    assert feats.shape == (6, 3 * classifier.FEATURE_DIM)
    digits = classifier.to_digits(images)
    assert digits.shape == (18, 1, 28, 28)
    assert torch.allclose(feats[:, classifier.FEATURE_DIM:2 * classifier.FEATURE_DIM], model.embed(digits[1::3]), atol=1e-4, rtol=1e-4)
