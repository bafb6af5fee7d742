"""Frechet distances through clean-fid: a local feature network, metric naming, the offline Inception path."""
import urllib.error

import pytest
import torch
from torch import nn

from roadmap import fid
from roadmap.errors import ConfigError


def _random_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return lambda images: net(images)


def test_custom_features_distance(tmp_path):
    features = _random_net()
    rng = torch.Generator().manual_seed(0)
    real = torch.rand(200, 3, 8, 8, generator=rng) * 2 - 1
    same = torch.rand(200, 3, 8, 8, generator=rng) * 2 - 1
    shifted = (torch.rand(200, 3, 8, 8, generator=rng) * 2 - 1) * 0.3 + 0.5
    identical = fid.frechet_distance(real, real, features)
    assert list(identical) == ["fd_custom"] and abs(identical["fd_custom"]) < 1e-4
    near = fid.frechet_distance(same, real, features)["fd_custom"]
    far = fid.frechet_distance(shifted, real, features)["fd_custom"]
    assert 0 < near < far and far > 10 * near


def test_registered_feature_network_name(monkeypatch):
    monkeypatch.setitem(fid._feature_networks, "tiny", ("fd_tiny", _random_net))
    images = torch.rand(50, 3, 8, 8) * 2 - 1
    result = fid.frechet_distance(images, images.flip(0), "tiny")
    assert set(result) == {"fd_tiny"} and abs(result["fd_tiny"]) < 1e-4
    assert fid.metric_name("stackedmnist") == "fd_mnist_classifier"
    assert fid.metric_name(None) == "fid"
    with pytest.raises(ValueError):
        fid.register_feature_network("bad", "fid", _random_net)
    with pytest.raises(ConfigError, match="feature network"):
        fid.metric_name("inceptionv4")


def test_offline_inception_is_one_clear_line(monkeypatch):
    import cleanfid.fid

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(cleanfid.fid, "build_feature_extractor", offline)
    images = torch.zeros(4, 3, 8, 8)
    with pytest.raises(fid.FidUnavailable) as error:
        fid.frechet_distance(images, images)
    message = str(error.value)
    assert "\n" not in message and "Inception" in message and "--features" in message


def test_to_uint8_round_trip():
    images = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    assert fid.to_uint8(images)[0, :, :, 0].tolist() == [[0, 128], [255, 255]]
