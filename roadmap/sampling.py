"""`r3bench generate` and `r3bench metric`: images per seed from a run's EMA generator, and its precision/recall and KID (paper Section 4).

`generate` works like the official `gen_images.py`, with its latents: z = numpy's
RandomState(seed).randn(1, latent_dim) (cast to fp32, as the official first stage does), so an
imported checkpoint gives the official script's image for a seed (up to its bf16 stages and fp32
rounding), and an image depends only on its
seed and class, never on which other seeds were asked for; each seed runs through the network on
its own for the same reason. PNG pixels are the official script's `(x * 127.5 + 128)` clamped to
[0, 255] and truncated to uint8.
It works on our runs and on imported official checkpoints (roadmap/official.py), whose folders
have the same config.yaml and checkpoint.pt.
"""
import json
import re
import sys
from pathlib import Path

import torch

from roadmap.errors import ConfigError, check_int

MAX_SEEDS = 100_000
MAX_SEED = 2**32 - 1  # numpy's RandomState (the official latents) takes 32-bit seeds
SEED_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str) -> list:
    """'0-63' or '1,5,10-12' -> [0, ..., 63] or [1, 5, 10, 11, 12] (ConfigError naming --seeds)."""
    seeds = []
    for part in str(text).split(","):
        match = SEED_RANGE.match(part.strip())
        if not match:
            raise ConfigError(f"--seeds: expected a list such as 0-63 or 1,5,10-12, got {text!r}")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high < low:
            raise ConfigError(f"--seeds: range {part.strip()!r} runs backwards")
        if high > MAX_SEED:
            raise ConfigError(f"--seeds: seeds are at most {MAX_SEED} (32 bits, as the official gen_images.py), got {high}")
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise ConfigError(f"--seeds: more than {MAX_SEEDS} seeds")
        seeds.extend(range(low, high + 1))
    return seeds


def load_run(run_dir, device="cpu"):
    """(config, ModelPair with the EMA weights in G, eval mode) of a run folder (ours or an imported one)."""
    import yaml

    from roadmap import files
    from roadmap.registry import create_model

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"RUN_DIR: {str(run_dir)!r} has no config.yaml (not a run folder)")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    checkpoint = files.load_checkpoint(run_dir)
    if checkpoint is None or "generator_ema" not in checkpoint:
        raise ConfigError(f"RUN_DIR: {str(run_dir)!r} has no readable checkpoint.pt")
    pair = create_model(config["model"], **(config.get("model_args") or {}))
    pair.generator.load_state_dict(checkpoint["generator_ema"])
    if "discriminator" in checkpoint:  # an imported G_ema-only snapshot has none
        pair.discriminator.load_state_dict(checkpoint["discriminator"])
    pair.place(device).generator.eval().requires_grad_(False)
    return config, pair


def num_classes(pair) -> int:
    """Class count of a generator (0: unconditional); every conditional G here has `num_classes`."""
    return int(getattr(pair.generator, "num_classes", 0) or 0)


def seed_latent(seed: int, latent_dim: int) -> torch.Tensor:
    """z [1, latent_dim] of a seed as the official gen_images.py draws it (numpy RandomState, then fp32)."""
    import numpy as np

    return torch.from_numpy(np.random.RandomState(seed).randn(1, latent_dim)).float()


def to_pixels(images: torch.Tensor):
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C] as the official gen_images.py converts them."""
    return (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def seed_images(pair, seeds, class_index=None, device="cpu") -> torch.Tensor:
    """Images [len(seeds), C, H, W] in the generator's range, one forward pass per seed."""
    classes = num_classes(pair)
    if classes and class_index is None:
        raise ConfigError(f"--class: the run is class-conditional ({classes} classes); give --class C in [0, {classes - 1}]")
    if not classes and class_index is not None:
        raise ConfigError("--class: the run is unconditional; leave --class out")
    if classes:
        check_int("--class", class_index, 0, classes - 1)
    images = []
    with torch.no_grad():
        for seed in seeds:
            z = seed_latent(seed, pair.latent_dim).to(device)
            labels = torch.tensor([class_index], device=device) if classes else None
            images.append(pair.generator(z, labels).float().cpu())
    return torch.cat(images)


def run_generate(args) -> int:
    from PIL import Image

    from roadmap import files
    from roadmap.images import save_image_grid

    seeds = parse_seeds(args.seeds)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {str(out)!r} is a file; give a folder")
    _, pair = load_run(args.run_dir, args.device)
    images = seed_images(pair, seeds, args.class_index, args.device)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ConfigError(f"RUN_DIR: the run's generator makes samples of shape {tuple(images.shape[1:])}, not images "
                          "(2-D toys are plotted by their own report figures)")
    files.make_dirs(out)
    suffix = f"-class{args.class_index}" if args.class_index is not None else ""
    if args.images in ("both", "png"):
        for seed, array in zip(seeds, to_pixels(images)):
            path = out / f"seed{seed:04d}{suffix}.png"
            Image.fromarray(array).save(path.with_suffix(".tmp.png"))
            path.with_suffix(".tmp.png").replace(path)
    if args.images in ("both", "grid"):
        save_image_grid(images, out / f"grid{suffix}.png")
    print(f"generate: {len(seeds)} image(s) from {args.run_dir} (EMA generator) -> {out}")
    return 0


CHUNK = 1024  # images held in memory at once while writing PNGs (50k FFHQ-256 images would be 39 GB as floats)
# Real images of the official *_full protocols: pr50k3_full reads up to 200k, kid50k_full up to 1M (each once).
REAL_IMAGES = {"pr50k3": 200_000, "kid50k": 1_000_000}


def real_chunks(data, n: int, seed: int = 0):
    """Up to n real images in chunks [<= CHUNK, 3, H, W] in [-1, 1], each data-set image at most once (fixed seed).

    The official pr50k3/kid50k read the data set's images once each; drawn with replacement, a
    repeated image would be its own nearest neighbour and shrink the k-NN radii. Data sets without
    an image index (Stacked MNIST composes its samples) yield n samples from a seeded generator.
    """
    if hasattr(data, "uint8"):
        index = torch.randperm(data.count, generator=torch.Generator().manual_seed(seed))[:n]
        for start in range(0, len(index), CHUNK):
            yield data.uint8(index[start:start + CHUNK]).float() / 127.5 - 1.0
    else:
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, n, CHUNK):
            yield data.sample(min(CHUNK, n - start), generator)[0]


def fake_chunks(generator, latent_dim: int, num_classes: int, n: int, device, batch: int = 256):
    """The samples of roadmap.trainer.generate (same latents and labels, same order), in chunks of `batch` on the CPU."""
    from roadmap.trainer import generate_chunks

    return (chunk.cpu() for chunk in generate_chunks(generator, latent_dim, num_classes, n, device, batch))


def write_chunks(chunks, folder) -> int:
    """Write image chunks in [-1, 1] as folder/000000.png ...; returns how many."""
    from PIL import Image

    from roadmap.fid import to_uint8

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for chunk in chunks:
        for array in to_uint8(chunk):
            Image.fromarray(array).save(folder / f"{count:06d}.png")
            count += 1
    return count


def run_metric(args) -> int:
    """`r3bench metric --run RUN --metric pr50k3|kid50k`: writes RUN/<metric>[_<features>].json."""
    import tempfile

    from roadmap import files
    from roadmap.recall import (FeaturesUnavailable, feature_extractor, folder_features, kernel_inception_distance,
                                precision_recall)
    from roadmap.registry import create_dataset

    for name in ("n", "n_real"):
        if getattr(args, name) is not None:
            check_int(f"--{name.replace('_', '-')}", getattr(args, name), 4)
    n = args.n if args.n is not None else 50_000
    config, pair = load_run(args.run, args.device)
    kind = "pr" if args.metric == "pr50k3" else "kid"
    try:  # before the data and the samples: offline, fail at once
        extractor, resize = feature_extractor(kind, args.features, args.device)
    except FeaturesUnavailable as error:
        print(f"r3bench metric: {error}", file=sys.stderr)
        return 1
    data = create_dataset(config["dataset"], **(config.get("dataset_args") or {}))
    if len(getattr(data, "shape", ())) != 3:
        raise ConfigError(f"--run: {args.metric} needs an image data set; the run trained on {config['dataset']!r}")
    n_real = args.n_real if args.n_real is not None else (REAL_IMAGES[args.metric] if hasattr(data, "uint8") else n)
    with tempfile.TemporaryDirectory(prefix="r3bench-metric-") as folder:
        n_real = write_chunks(real_chunks(data, n_real), Path(folder) / "real")
        write_chunks(fake_chunks(pair.generator, pair.latent_dim, data.num_classes, n, args.device), Path(folder) / "fake")
        real_features = folder_features(Path(folder) / "real", extractor, resize, args.device)
        fake_features = folder_features(Path(folder) / "fake", extractor, resize, args.device)
    if kind == "pr":
        result = precision_recall(real_features, fake_features)
    else:
        result = dict(kid=kernel_inception_distance(real_features, fake_features))
    result.update(n=n, n_real=n_real, features=args.features or ("vgg16" if kind == "pr" else "inception"))
    name = args.metric + (f"_{args.features}" if args.features else "")
    files.write_json(Path(args.run) / f"{name}.json", result)
    print(json.dumps(result))
    return 0
