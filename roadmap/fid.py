"""Frechet distances with clean-fid (paper Section 4, FID-50k): Inception FID, or a local feature network.

Both paths write the generated and the real images as PNG files (the standard protocol: FID
is measured on 8-bit images) and call `cleanfid.fid.compute_fid(fdir1, fdir2, ...)`:
- features=None: clean-fid's Inception (mode "clean", resized to 299 by clean-fid); its weights
  download at first use, and without network `FidUnavailable` says so in one line.
- features=NAME: a registered local network through clean-fid's `custom_feat_extractor`, at the
  images' own resolution; the metric is reported under the network's own name (e.g.
  `fd_mnist_classifier`), never as `fid`, so nobody mistakes it for Inception FID.
"""
import tempfile
from pathlib import Path

import numpy as np
import torch

from roadmap.errors import unknown

INCEPTION_METRIC = "fid"
EVAL_BLOCK = 256  # images per block of a shared evaluation, generated and real (one generator batch; clean-fid's batch here)
INCEPTION_FILE = "/tmp/inception-2015-12-05.pt"  # where clean-fid looks for (and downloads) its weights


class FidUnavailable(RuntimeError):
    """Inception FID cannot be computed here (no weights, no network)."""


# name -> (metric name, factory() -> callable(images [N, 3, H, W] in [-1, 1]) -> features [N, F])
_feature_networks: dict = {}


def register_feature_network(name: str, metric: str, factory) -> None:
    """Make `--features name` available; `factory()` builds the feature function lazily."""
    if metric == INCEPTION_METRIC:
        raise ValueError("a custom feature network may not report its distance as 'fid'")
    _feature_networks[name] = (metric, factory)


def feature_networks() -> list:
    from roadmap.registry import load_plugins

    load_plugins()  # tiers register their feature networks (e.g. stackedmnist's classifier)
    return sorted(_feature_networks)


def metric_name(features=None) -> str:
    if features is None:
        return INCEPTION_METRIC
    if features not in feature_networks():
        raise unknown("feature network", features, _feature_networks)
    return _feature_networks[features][0]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float [N, 3, H, W] -> uint8 [N, H, W, 3] as an image file stores them."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def write_pngs(images: torch.Tensor, folder, chunk: int = 1024, first: int = 0) -> None:
    """Write images [N, 3, H, W] in [-1, 1] as folder/000000.png ... (numbered from `first`)."""
    for start in range(0, len(images), chunk):
        write_pixels(to_uint8(images[start:start + chunk]), folder, first + start)


def write_pixels(pixels: np.ndarray, folder, first: int = 0) -> None:
    """Write uint8 images [N, H, W, 3] as folder/<first>.png, <first + 1>.png, ..."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for offset, array in enumerate(pixels):
        Image.fromarray(array).save(folder / f"{first + offset:06d}.png")


def _inception(device):
    from cleanfid.fid import build_feature_extractor

    try:
        return build_feature_extractor("clean", device, use_dataparallel=False)
    except Exception as error:  # urllib's URLError/HTTPError offline, or a truncated file
        raise FidUnavailable(
            f"Inception weights for clean-fid are unavailable ({type(error).__name__}: {error}); "
            f"put inception-2015-12-05.pt at {INCEPTION_FILE}, or use --features "
            f"{'|'.join(feature_networks())} for an offline Frechet distance") from None


def _custom_extractor(function, device):
    """clean-fid feeds float [B, 3, H, W] in [0, 255]; our feature functions take [-1, 1]."""

    def extract(batch):
        with torch.no_grad():
            return function(batch.float().to(device) / 127.5 - 1.0)

    return extract


def _identity_resize(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32)  # float output: clean-fid keeps the [0, 255] range


def frechet_distance(fake: torch.Tensor, real: torch.Tensor, features=None, device="cpu", batch_size=256, verbose=False) -> dict:
    """{metric: distance} between fake and real images [N, 3, H, W] in [-1, 1] (see the module docstring).

    features=None: Inception FID (raises FidUnavailable offline); else a registered feature network
    name, or a callable images -> features (reported as `fd_custom`).
    """
    with tempfile.TemporaryDirectory(prefix="r3bench-fid-") as folder:
        write_pngs(fake, Path(folder) / "fake")
        write_pngs(real, Path(folder) / "real")
        return frechet_distance_of_folders(Path(folder) / "fake", Path(folder) / "real", features, device, batch_size, verbose)


def frechet_distance_of_folders(fake, real, features=None, device="cpu", batch_size=256, verbose=False) -> dict:
    """{metric: distance} between two folders of PNGs (clean-fid reads them in batches of `batch_size`)."""
    device = torch.device(device)
    if features is None:
        metric, extractor, resize = INCEPTION_METRIC, _inception(device), None
    elif callable(features):
        metric, extractor, resize = "fd_custom", _custom_extractor(features, device), _identity_resize
    else:
        metric = metric_name(features)
        extractor, resize = _custom_extractor(_feature_networks[features][1](), device), _identity_resize
    from cleanfid import fid as cleanfid

    value = cleanfid.compute_fid(str(fake), str(real), mode="clean", custom_feat_extractor=extractor, custom_fn_resize=resize,
                                 num_workers=0, batch_size=batch_size, device=device, verbose=verbose, use_dataparallel=False)
    return {metric: float(value)}


def real_samples(data, n: int, seed: int = 0) -> torch.Tensor:
    """n real images of a data set in [-1, 1], without x-flips, from a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    if hasattr(data, "uint8"):  # image data sets: no flips, no per-sample augmentation
        index = torch.randint(data.count, (n,), generator=generator)
        return data.uint8(index).float() / 127.5 - 1.0
    return data.sample(n, generator)[0]


def fid_against_data(generate, data, n: int, features=None, device=None) -> float:
    """Metric value of generate(n) [n, 3, H, W] against n real samples of `data`.

    Streaming when `generate` has `blocks` (roadmap.trainer.Samples) and `data` reads images by index:
    the generated and the real images are featurised a block at a time on `generate.device` (the training
    device), clean-fid's folder pipeline in memory (`_block_features`), and only the features' running moments
    stay (roadmap/moments.py), so host memory does not grow with n (50k FFHQ-256 samples are 39 GB in float32).
    On several ranks every rank featurises its share of the blocks, fake and real (roadmap/evaluation.py), and
    rank 0 adds them up in block order and returns the value; the other ranks return None. The value is the
    whole-tensor path's up to the float64 summation order of the moments (tests/roadmap/test_streaming_eval.py).
    """
    device = torch.device(device if device is not None else getattr(generate, "device", "cpu"))
    if features is None:
        _inception(device)  # fail fast offline, before generating n samples
    if not (callable(getattr(generate, "blocks", None)) and hasattr(data, "uint8")):
        return next(iter(frechet_distance(generate(n), real_samples(data, n), features, device).values()))
    from roadmap.evaluation import map_blocks
    from roadmap.moments import distance_of_gaussians, moments_of

    featurise = _block_features(features, device)
    real = _RealPixels(data, n, generate.rank, generate.world)
    gaussians = []
    for source, to_pixels in ((generate, to_uint8), (real, lambda pixels: pixels.numpy())):
        blocks = map_blocks(source, n, EVAL_BLOCK, lambda images, to_pixels=to_pixels: (featurise(to_pixels(images)),))
        if blocks is not None:  # rank 0; the others have sent their share
            gaussians.append(moments_of(block for block, in blocks))
    return distance_of_gaussians(*gaussians) if gaussians else None


def _block_features(features, device):
    """A function uint8 pixels [B, H, W, 3] -> features float32 [B, F] on the host: clean-fid's folder pipeline
    in memory (the pixels are what PIL reads back from their lossless PNG; clean-fid's resize per image, to a
    float tensor as its ToTensor makes it, the network on the batch on `device`)."""
    if features is None:
        from cleanfid.resize import build_resizer

        extractor, resize = _inception(device), build_resizer("clean")
        network = lambda batch: extractor(batch.to(device))  # noqa: E731  (clean-fid's get_batch_features)
    else:
        if not callable(features):
            metric_name(features)  # an unknown name: one clear error
            features = _feature_networks[features][1]()
        network, resize = _custom_extractor(features, device), _identity_resize

    def featurise(pixels: np.ndarray) -> torch.Tensor:
        batch = torch.stack([torch.from_numpy(np.ascontiguousarray(resize(image).transpose(2, 0, 1))) for image in pixels])
        with torch.no_grad():
            return network(batch).float().cpu()

    return featurise


class _RealPixels:
    """The n real images of `real_samples`' draw (seed 0, no flips) as uint8 [B, 3, H, W] blocks of a rank's share,
    dealt as roadmap.trainer.Samples deals the generated ones (block k to rank k mod world)."""

    def __init__(self, data, n: int, rank: int, world: int):
        self.data, self.rank, self.world = data, rank, world
        self.index = torch.randint(data.count, (n,), generator=torch.Generator().manual_seed(0))  # real_samples' draw

    def blocks(self, n: int, size: int):
        for block, start in enumerate(range(0, n, size)):
            if block % self.world == self.rank:
                yield self.data.uint8(self.index[start:start + size]).permute(0, 2, 3, 1)
