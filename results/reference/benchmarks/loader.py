"""Images per second of the image loader alone (roadmap/loader.py), workers 0 vs 4, on a generated zip of 256 px PNGs (issue 22).

Usage:  python results/reference/benchmarks/loader.py [--images 256] [--batch 32] [--batches 24] [--json OUT]

The zip holds `--images` PNGs of 256x256 RGB (smooth gradients plus noise, ~150 KB each, like
photographs in size), decoded lazily (cache off, as FFHQ-256 is). Timed: `--batches` batches of
`--batch` images through ImageLoader.next after 2 untimed ones (worker start-up), uint8 decode,
x-flip and the float conversion included. One rank. Two figures per worker count:
- `img_per_s`: the loader alone, batches taken back to back;
- `img_per_s_with_step`: with a simulated GPU step of `--step-ms` between batches (a sleep: the
  CPU is free, as while kernels run on a GPU); in-process the decoding adds to the step, with
  workers it overlaps it, which is what the workers are for.
On a machine with fewer cores than workers (this one: 2 cores, shared), the loader alone cannot
gain from 4 workers; the overlap still shows.
"""
import argparse
import json
import os
import platform
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np


def make_zip(path: Path, count: int, size: int = 256) -> int:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index in range(count):
            base = np.stack([(x * (index % 7 + 1)) % 256, (y * (index % 5 + 1)) % 256, (x + y + index) % 256], -1)
            image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="png")
            archive.writestr(f"{index:05d}.png", buffer.getvalue())
    return path.stat().st_size


def measure(path: Path, workers: int, batch: int, batches: int, step_seconds: float = 0.0) -> float:
    import torch

    from roadmap.loader import ImageLoader
    from roadmap.registry import create_dataset

    data = create_dataset("imagefolder", path=str(path), xflip=True, cache=False)
    rng = torch.Generator().manual_seed(0)
    loader = ImageLoader(data, batch, slice(0, batch), rng, "cpu", workers=workers, prefetch=2)
    for _ in range(2):
        loader.next(rng)
    start = time.perf_counter()
    for _ in range(batches):
        loader.next(rng)
        time.sleep(step_seconds)
    return batch * batches / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--step-ms", type=float, default=80.0, help="simulated GPU step between batches")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "images256.zip"
        size = make_zip(path, args.images)
        rates = {f"workers_{w}": round(measure(path, w, args.batch, args.batches), 1) for w in (0, 4)}
        stepped = {f"workers_{w}": round(measure(path, w, args.batch, args.batches, args.step_ms / 1000), 1) for w in (0, 4)}
    result = dict(images=args.images, zip_mb=round(size / 2**20, 1), batch=args.batch, timed_batches=args.batches,
                  img_per_s=rates, speedup=round(rates["workers_4"] / rates["workers_0"], 2), step_ms=args.step_ms,
                  img_per_s_with_step=stepped, speedup_with_step=round(stepped["workers_4"] / stepped["workers_0"], 2), cpu_count=os.cpu_count(),
                  machine=platform.machine(), torch=torch.__version__)
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
