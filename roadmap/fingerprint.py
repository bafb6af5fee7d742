"""A fingerprint of what a run computes: a hash of two training iterations on fixed inputs (evidence provenance, issue 24).

Two commits compute the same thing for a run when this hash agrees, whatever files they touched:
it covers the run's network (and its precision stages), loss, penalties, lazy interval, the
schedules' values at step 0, Adam, the augmentation and the step code. Two iterations (steps 0
and 1) so that a lazy run's penalty step and plain step both count. The inputs are fixed random
tensors of the data's shape, not the data set itself, so no data is loaded; the batch is small
(FINGERPRINT_BATCH) and the weights are seeded with FINGERPRINT_SEED, never the run's seed,
so all seeds of one setting share one fingerprint.

The hash is of the bytes of every statistic and every parameter after the two updates, computed
on the CPU with one thread and the CPU's operators (or `operators`: the plain ones). It is bitwise, so it is also a
fingerprint of the machine's kernels: compare fingerprints made on the same kind of machine
(the evidence here: x86-64 CPU, PyTorch from pyproject.toml).
"""
import copy
import hashlib
import json

import torch

from roadmap.config import FIELDS, RunConfig, to_dict

FINGERPRINT_SEED = 20_240_901  # weights and inputs; fixed forever (changing it makes every run stale)
FINGERPRINT_BATCH = 4  # samples per batch: small for speed, a multiple of minibatch-stddev groups (Config A)
FINGERPRINT_STEPS = 2  # steps 0 (a penalty step at any lazy interval) and 1 (not one when the interval > 1)
# Settings that cannot change the arithmetic of an iteration: never part of the cache key (the
# hash does not read them either).
NON_COMPUTATIONAL = ("seed", "duration_kimg", "tick_kimg", "checkpoint_ticks", "device", "threads", "eval_samples",
                     "score_ticks", "score_samples", "logger", "feeds", "divergence_grad_norm", "dataset_args", "batch",
                     "init_from", "batch_gpu", "batch_gpu_G", "data_workers", "data_prefetch", "cudnn_benchmark")
# (init_from: the fingerprint is of the code, from fixed weights; micro-batches: it runs one batch of FINGERPRINT_BATCH)


def config_from_stored(values: dict) -> RunConfig:
    """The RunConfig of a run folder's config.yaml (already resolved: keys this code lacks are dropped)."""
    return RunConfig(**{key: value for key, value in values.items() if key in FIELDS})


def cache_key(config: RunConfig) -> str:
    """The settings that the fingerprint reads, as one string (runs that share it share a fingerprint)."""
    values = {key: value for key, value in to_dict(config).items() if key not in NON_COMPUTATIONAL}
    return json.dumps(values, sort_keys=True, default=str)


def _digest(stats: dict, modules) -> str:
    hasher = hashlib.sha256()
    for key in sorted(stats):
        value = stats[key]
        tensor = value.detach() if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=torch.float64)
        hasher.update(key.encode())
        hasher.update(tensor.float().cpu().contiguous().numpy().tobytes())
    for module in modules:
        for name, tensor in module.state_dict().items():
            hasher.update(name.encode())
            hasher.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return hasher.hexdigest()[:16]


def compute_fingerprint(config: RunConfig, operators=None) -> str:
    """16 hex digits: the hash of FINGERPRINT_STEPS training iterations of `config`'s network and loss on fixed inputs.

    `operators`: the backend its layers run (networks/operators.py; None: the CPU's own). Leaves the
    caller's random streams and thread count untouched.
    """
    from roadmap.registry import create_model
    from roadmap.schedules import cosine_ramp
    from roadmap.step import Batch, Optimization, training_iteration

    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(1)
        try:
            torch.manual_seed(FINGERPRINT_SEED)
            pair = create_model(config.model, **copy.deepcopy(config.model_args)).place("cpu", operators)
            loss = config.resolved_loss(pair.loss_spec)
            num_classes = max((int(getattr(m, "num_classes", 0) or 0) for m in pair.generator.modules()), default=0)  # a conditional G says so
            inputs = torch.Generator().manual_seed(FINGERPRINT_SEED)
            labels = (lambda: torch.randint(num_classes, (FINGERPRINT_BATCH,), generator=inputs)) if num_classes else (lambda: None)
            with torch.no_grad():
                probe_labels = torch.zeros(FINGERPRINT_BATCH, dtype=torch.long) if num_classes else None
                shape = pair.generator(torch.zeros(FINGERPRINT_BATCH, pair.latent_dim), probe_labels).shape[1:]
            if pair.step_statistics is not None:
                pair.step_statistics(0)  # drain the probe's counts
            lr, beta2, gamma = (cosine_ramp(value, 0, config.burn_in_kimg * 1e3) for value in (config.lr, config.beta2, config.gamma))
            optimization = Optimization(
                torch.optim.Adam(pair.generator.parameters(), lr=lr, betas=(0.0, beta2)),
                torch.optim.Adam(pair.discriminator.parameters(), lr=lr, betas=(0.0, beta2)),
                torch.amp.GradScaler("cpu", enabled=config.grad_scaler), torch.amp.GradScaler("cpu", enabled=config.grad_scaler))
            p = cosine_ramp(config.augment_p, 0, config.burn_in_kimg * 1e3)
            augment_rng = torch.Generator().manual_seed(FINGERPRINT_SEED + 1)
            if p > 0:
                from roadmap.augment import augment as bgc

                def augment(x):
                    return bgc(x, p, generator=augment_rng)
            else:
                def augment(x):
                    return x
            stats = {}
            for step in range(FINGERPRINT_STEPS):
                def batch():
                    real = torch.randn(FINGERPRINT_BATCH, *shape, generator=inputs).tanh()
                    return Batch(real, labels(), torch.randn(FINGERPRINT_BATCH, pair.latent_dim, generator=inputs))
                step_stats = training_iteration(pair, optimization, loss, step, gamma, batch(), batch(), augment)
                if pair.step_statistics is not None:
                    step_stats.update(pair.step_statistics(step))
                stats.update({f"{step}.{key}": value for key, value in step_stats.items()})
            return _digest(stats, (pair.generator, pair.discriminator))
        finally:
            torch.set_num_threads(threads)


class FingerprintCache:
    """compute_fingerprint memoized by `cache_key` (a report checks hundreds of runs of a few settings)."""

    def __init__(self):
        self._known = {}

    def __call__(self, config: RunConfig) -> str:
        key = cache_key(config)
        if key not in self._known:
            try:
                self._known[key] = compute_fingerprint(config)
            except Exception as error:  # a configuration this code can no longer build is stale by definition
                self._known[key] = f"error: {type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"
        return self._known[key]

