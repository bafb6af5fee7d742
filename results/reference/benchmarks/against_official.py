"""Config E training iterations, r3bench against the official R3GAN code, alternated in one process (issue "Performance").

Usage (a checkout of https://github.com/brownvc/R3GAN at PATH; nothing of it is copied here):

    python results/reference/benchmarks/against_official.py --official PATH [--preset stackedmnist] [--width 0.125]
        [--batch 16] [--pairs 12] [--threads 1] [--device cpu|cuda] [--precision fp32|bf16]
        [--peak-tflops T] [--json OUT]

One iteration on each side is what each training loop does per step at batch `--batch` on one
device: the D step (RpGAN + R1 + R2 on real and fake, Adam step), then the G step on a second
real batch (Adam step). The official side calls its own loss (training/loss.py R3GANLoss, with
its training_stats reports), toggles requires_grad per phase and flattens the gradients before
Adam as its training_loop.py does; on the CPU its bias_act and upfirdn2d ops run their reference
paths, as they do for anyone training it on a CPU, and on CUDA its own CUDA kernels where they
build (else the reference paths; the result says which). Both networks are Table 9's Config E at
`--preset` (stackedmnist, ffhq64, ffhq256: the unconditional ones) scaled by `--width`; the script
checks that their parameter counts agree before timing. `--precision bf16` (CUDA only) runs the
preset's low-precision stages in bf16 on both sides (the official FP16Stages, which are bf16).

Timing: the two iterations alternate (A B A B ...) after two warm-up iterations each, so drifts in
machine load hit both sides alike; the reported speed-up is the median over pairs of the per-pair
ratio of images per second. On CUDA each timed iteration ends with a synchronize, and the peak
memory of each side is torch.cuda.max_memory_allocated over its own iterations. The FLOPs of one
r3bench iteration are counted once (torch.utils.flop_counter, convolutions and matmuls of the
forward, backward and R1/R2 double backward); with `--peak-tflops` (the device's dense peak for
the precision, e.g. 989 for bf16 on an H100/H200 SXM) the model FLOP utilization is reported.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

UNCONDITIONAL = ("stackedmnist", "ffhq64", "ffhq256")


def official_pair(path: str, preset: str, width: float, low_precision_stages: int, device):
    """G, D, loss of the official code at Table 9's `preset` scaled by `width` (its lists run from 4x4 up)."""
    sys.path.insert(0, os.path.abspath(path))
    from training.loss import R3GANLoss  # noqa: E402  (the official package, from `path`)
    from training.networks import Discriminator, Generator

    from roadmap.networks.layers import scale_channels
    from roadmap.presets import PRESETS

    row = PRESETS[preset]
    stems = [scale_channels(c, width) for c in row["channels"][::-1]]
    # The expanded 3x3 conv is 2 x stem wide with Table 9's group size; the group count scales with the width.
    sizes = [2 * c // g for c, g in zip(row["channels"][::-1], row["groups"][::-1])]
    cardinality = [max(1, round(2 * s / size)) for s, size in zip(stems, sizes)]
    # As official train.py: G's lists run from 4x4 up, D's are their reverse (highest resolution first), and
    # D's low-precision stages are G's indices shifted by their count (G: the last stages, D: the first).
    fp16_G = [-(i + 1) for i in range(low_precision_stages)]
    common = dict(ExpansionFactor=2, c_dim=0, img_resolution=row["resolution"])
    G = Generator(NoiseDimension=64, WidthPerStage=stems, CardinalityPerStage=cardinality, BlocksPerStage=[2] * len(stems),
                  FP16Stages=fp16_G, **common).train().requires_grad_(False).to(device)
    D = Discriminator(WidthPerStage=stems[::-1], CardinalityPerStage=cardinality[::-1], BlocksPerStage=[2] * len(stems),
                      FP16Stages=[x + len(fp16_G) for x in fp16_G], **common).train().requires_grad_(False).to(device)
    return G, D, R3GANLoss(G, D)


def official_iteration(G, D, loss, optimizers, real_D, real_G, z_D, z_G, gamma):
    """One iteration as the official training_loop.py runs it on one device (phases D then G)."""
    for name, module, optimizer, real, z in (("D", D, optimizers[1], real_D, z_D), ("G", G, optimizers[0], real_G, z_G)):
        optimizer.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        loss.accumulate_gradients(phase=name, real_img=real, real_c=None, gen_z=z, gamma=gamma, gain=1)
        module.requires_grad_(False)
        params = [param for param in module.parameters() if param.grad is not None]
        flat = torch.cat([param.grad.flatten() for param in params])
        for param, grad in zip(params, flat.split([param.numel() for param in params])):
            param.grad = grad.reshape(param.shape)
        optimizer.step()


class _FlopCounter(TorchDispatchMode):
    """FLOPs of every op torch.utils.flop_counter knows (convolutions, matmuls, their backward), summed.

    torch's FlopCounterMode also tracks modules with backward hooks, which autograd.grad on leaf
    inputs (R1/R2) does not support; this counts the same formulas without the module tracking.
    """

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def official_ops() -> str:
    """Whether the official code's custom CUDA ops built ('cuda') or it fell back to its reference ops."""
    try:
        from torch_utils.ops import bias_act, upfirdn2d  # noqa: F401  (the official package)

        built = bias_act._init() and upfirdn2d._init()
        return "cuda" if built else "reference"
    except Exception as error:  # noqa: BLE001  (a failed build is a result here, not an error)
        return f"reference ({type(error).__name__})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, metavar="PATH", help="a checkout of brownvc/R3GAN")
    parser.add_argument("--preset", default="stackedmnist", choices=UNCONDITIONAL)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=12, help="timed A/B pairs after warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--peak-tflops", type=float, help="the device's dense peak for --precision, for MFU")
    parser.add_argument("--json", metavar="OUT", help="write the result here as JSON")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.official, "R3GAN", "Networks.py")):
        print(f"against_official: {args.official!r} is not a checkout of brownvc/R3GAN (no R3GAN/Networks.py)", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("against_official: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.precision == "bf16" and args.device == "cpu":
        print("against_official: --precision bf16 needs --device cuda (bf16 convolutions on this CPU are ~500x slower)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from roadmap.presets import PRESETS
    from roadmap.registry import create_model
    from roadmap.step import Batch, Optimization, training_iteration

    torch.manual_seed(0)
    pair = create_model("E", preset=args.preset, width=args.width, precision=args.precision)
    pair.generator.to(device)
    pair.discriminator.to(device)
    row = PRESETS[args.preset]
    low_precision = min(row["low_precision_stages"], len(row["channels"]) - 1) if args.precision == "bf16" else 0
    G, D, loss = official_pair(args.official, args.preset, args.width, low_precision, device)
    counts = dict(ours=[sum(p.numel() for p in m.parameters()) for m in (pair.generator, pair.discriminator)],
                  official=[sum(p.numel() for p in m.parameters()) for m in (G, D)])
    if counts["ours"] != counts["official"]:
        print(f"against_official: parameter counts differ (G, D): {counts}", file=sys.stderr)
        return 1

    def adam(module):
        return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.0, 0.99), eps=1e-8)

    ours_opt = Optimization(adam(pair.generator), adam(pair.discriminator),
                            torch.amp.GradScaler(args.device, enabled=False), torch.amp.GradScaler(args.device, enabled=False))
    official_opt = (adam(G), adam(D))
    n, resolution = args.batch, row["resolution"]
    reals = [torch.rand(n, 3, resolution, resolution, device=device) * 2 - 1 for _ in range(2)]
    step = [0]

    def ours():
        training_iteration(pair, ours_opt, pair.loss_spec, step[0], args.gamma,
                           Batch(reals[0], None, torch.randn(n, 64, device=device)),
                           Batch(reals[1], None, torch.randn(n, 64, device=device)))
        step[0] += 1

    def official():
        official_iteration(G, D, loss, official_opt, reals[0], reals[1], torch.randn(n, 64, device=device),
                           torch.randn(n, 64, device=device), args.gamma)

    peaks = dict(ours=0, official=0)

    def timed(function, side):
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
            peaks[side] = max(peaks[side], torch.cuda.max_memory_allocated())
        return time.perf_counter() - start

    for _ in range(2):
        ours()
        official()
    with _FlopCounter() as counter:
        ours()
    flops = counter.flops
    rows = []
    for index in range(args.pairs):
        a, b = timed(ours, "ours"), timed(official, "official")
        rows.append(dict(ours_img_per_s=n / a, official_img_per_s=n / b, ratio=b / a))
        print(f"pair {index + 1}/{args.pairs}: r3bench {n / a:.2f} img/s, official {n / b:.2f} img/s, ratio {b / a:.3f}",
              flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    official_commit = subprocess.run(["git", "-C", args.official, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip() or "unknown (not a git checkout)"
    ours_rate = statistics.median(r["ours_img_per_s"] for r in rows)
    result = dict(
        what="Config E training iteration (D step with R1+R2 + Adam, G step + Adam)",
        preset=args.preset, width=args.width, batch=n, precision=args.precision, low_precision_stages=low_precision,
        device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu", threads=args.threads,
        pairs=args.pairs, parameters_G_D=counts["ours"],
        median_ratio=statistics.median(r["ratio"] for r in rows),
        ours_img_per_s_median=ours_rate,
        official_img_per_s_median=statistics.median(r["official_img_per_s"] for r in rows),
        flops_per_iteration_ours=flops,
        official_ops=official_ops() if device.type == "cuda" else "reference (CPU)",
        r3bench_commit=commit, official_commit=official_commit, torch=torch.__version__,
        machine=f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        cpu_model=_cpu_model(), pairs_measured=rows)
    if device.type == "cuda":
        result.update(peak_memory_gb_ours=peaks["ours"] / 2**30, peak_memory_gb_official=peaks["official"] / 2**30)
    if args.peak_tflops:
        result["mfu_ours"] = flops * ours_rate / n / (args.peak_tflops * 1e12)
    print(f"median ratio (official s / r3bench s per iteration): {result['median_ratio']:.3f}; "
          f"r3bench {result['ours_img_per_s_median']:.2f} img/s, official {result['official_img_per_s_median']:.2f} img/s; "
          f"{flops / 1e9:.1f} GFLOP per r3bench iteration" + (f", MFU {result['mfu_ours']:.3f}" if args.peak_tflops else ""))
    if args.json:
        with open(args.json + ".tmp", "w") as handle:
            json.dump(result, handle, indent=1)
        os.replace(args.json + ".tmp", args.json)
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
