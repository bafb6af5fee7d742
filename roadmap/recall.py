"""Precision/recall (Kynkäänniemi et al. 2019, the official `pr50k3`) and KID, the metrics the paper reports beside FID (paper Section 4).

Both are pure functions of feature arrays; which network makes the features is the caller's choice:
- precision/recall: VGG16 features (NVIDIA's TorchScript `vgg16.pt` that StyleGAN2-ADA's and the
  official R3GAN's `pr50k3` use; it takes uint8 images and resizes them to 224 itself), k = 3:
  a sample lies on a manifold when it is within the k-th nearest-neighbour distance of some sample
  of the other set (distances between the sets' own points, the point itself excluded as the
  official code does by counting it as neighbour 0). Precision: fakes on the real manifold;
  recall: reals on the fake manifold. Distances are fp32 here; the official code rounds the
  features to fp16 first (on a GPU), which can move a probe across a ball's edge.
- KID: the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 averaged over
  100 random subsets of at most 1000 samples (clean-fid's `kernel_distance`, seeded here), on
  clean-fid's Inception features.
Images are scored as 8-bit PNGs, as for FID (roadmap/fid.py). Weights download once; offline the
command fails with one line (`FeaturesUnavailable`).
"""
import os
import urllib.request
from pathlib import Path

import numpy as np
import torch

VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"
NEIGHBOURHOOD = 3  # pr50k3: k = 3
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000


class FeaturesUnavailable(RuntimeError):
    """The feature network's weights are not here and cannot be downloaded."""


def kth_distances(features: torch.Tensor, k: int = NEIGHBOURHOOD, batch: int = 1_000) -> torch.Tensor:
    """Distance of each row of features [N, F] to its k-th nearest other row -> [N] (the row itself is neighbour 0)."""
    if len(features) <= k:
        raise ValueError(f"need more than k = {k} samples, got {len(features)}")
    radii = []
    for start in range(0, len(features), batch):
        distances = torch.cdist(features[start:start + batch], features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def manifold_fraction(manifold: torch.Tensor, probes: torch.Tensor, k: int = NEIGHBOURHOOD, batch: int = 1_000) -> float:
    """Fraction of probes [M, F] within the k-NN ball of at least one manifold point [N, F]."""
    radii = kth_distances(manifold, k, batch)
    inside = []
    for start in range(0, len(probes), batch):
        distances = torch.cdist(probes[start:start + batch], manifold)
        inside.append((distances <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(inside).float().mean().item()


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURHOOD) -> dict:
    """{"precision", "recall"} of fake features [M, F] against real features [N, F] (Kynkäänniemi et al. 2019)."""
    real_t = torch.as_tensor(np.asarray(real), dtype=torch.float32)
    fake_t = torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    return dict(precision=manifold_fraction(real_t, fake_t, k), recall=manifold_fraction(fake_t, real_t, k))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> float:
    """KID between features real [N, F] and fake [M, F]: mean unbiased MMD^2 over random subsets (cubic kernel)."""
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    d = real.shape[1]
    m = min(len(real), len(fake), subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = fake[rng.choice(len(fake), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(total / subsets / m)


# ----------------------------------------------------------------------------------------------
# Feature networks.

def cache_dir() -> Path:
    """Where downloaded feature weights live: $R3BENCH_CACHE, else ~/.cache/r3bench."""
    return Path(os.environ.get("R3BENCH_CACHE") or Path.home() / ".cache" / "r3bench")


def _download_once(url: str, path: Path) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as handle:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
        os.replace(partial, path)
    except Exception as error:  # URLError offline, HTTPError, a full disk
        partial.unlink(missing_ok=True)
        raise FeaturesUnavailable(f"VGG16 weights for precision/recall are unavailable ({type(error).__name__}: "
                                  f"{str(error).splitlines()[0][:100] if str(error) else 'no detail'}); put vgg16.pt "
                                  f"({url}) at {path}") from None
    return path


def vgg16_extractor(device):
    """clean-fid-style extractor: float images [B, 3, H, W] in [0, 255] -> VGG16 features [B, 4096]."""
    path = _download_once(VGG16_URL, cache_dir() / "vgg16.pt")
    try:
        network = torch.jit.load(str(path), map_location=device).eval()
    except Exception as error:  # a truncated download
        raise FeaturesUnavailable(f"{path} is not a readable TorchScript VGG16 ({type(error).__name__}); delete it to "
                                  "download again") from None

    def extract(batch):
        with torch.no_grad():
            images = batch.to(device).round().clamp(0, 255).to(torch.uint8)
            return network(images, return_features=True)

    return extract


def folder_features(folder, extractor, resize=None, device="cpu", batch_size=64) -> np.ndarray:
    """Features [N, F] of the PNG images in `folder` through clean-fid's reader (8-bit images, as for FID)."""
    from cleanfid.fid import get_folder_features

    return get_folder_features(str(folder), extractor, num_workers=0, batch_size=batch_size, device=torch.device(device),
                               mode="clean", custom_fn_resize=resize, verbose=False)


def feature_extractor(metric: str, features, device):
    """(extractor, resize) for `metric` (pr | kid): VGG16 / Inception by default, or a registered local network."""
    from roadmap import fid

    device = torch.device(device)
    if features is not None:
        fid.metric_name(features)  # ConfigError for an unknown name
        return fid._custom_extractor(fid._feature_networks[features][1](), device), fid._identity_resize
    if metric == "pr":
        return vgg16_extractor(device), fid._identity_resize  # the TorchScript VGG16 resizes to 224 itself
    try:
        return fid._inception(device), None
    except fid.FidUnavailable as error:
        raise FeaturesUnavailable(str(error)) from None
