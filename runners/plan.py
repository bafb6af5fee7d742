"""What one rank of a run will hold, shown by `r3bench run --dry-run` before anything is queued (issue 22, Table 9 at paper scale).

Per run: GPUs (nodes x tasks per node, one rank per task and GPU), the per-GPU share of the batch,
the D and G micro-batches (batch_gpu, batch_gpu_G; unset on CUDA: the largest that the estimate
fits into `resources.gpu_mem_gb`, as the trainer does with the GPU it finds), and the estimated
peak GPU memory per rank (roadmap/memory.py says how it is computed).
"""
from roadmap.config import RunConfig, micro_batches
from roadmap.errors import ConfigError

DEFAULT_GPU_MEM_GB = 80  # an 80 GB A100/H100, when the resources do not say


def ranks(resources: dict) -> int:
    return resources.get("tasks_per_node", 1) * resources.get("nodes", 1)


def check_micro_batches(specs, resources: dict) -> None:
    """A batch_gpu that does not split a rank's share is refused before any job starts, naming the run."""
    for spec in specs:
        try:
            micro_batches(spec.config, ranks(resources))
        except ConfigError as error:
            raise ConfigError(f"{spec.experiment}/{spec.name}: {error}") from None


def rank_plan(config: RunConfig, resources: dict) -> str:
    """One line: GPUs, per-GPU batch, micro-batches and the memory estimate of a run."""
    import dataclasses

    from roadmap.memory import choose_micro_batch, estimate

    world = ranks(resources)
    share = config.batch // world
    unit = "GPU" if resources.get("gpus_per_node") else "rank"
    memory = int(resources.get("gpu_mem_gb", DEFAULT_GPU_MEM_GB) * 2**30)
    if config.device != "cpu" and config.batch_gpu is None:
        config = dataclasses.replace(config, batch_gpu=choose_micro_batch(config.model, config.model_args, share, memory,
                                                                          config.loss, config.penalties))
    count_D, count_G = micro_batches(config, world)
    size_D, size_G = share // count_D, share // count_G
    try:
        peak = max(estimate(config.model, config.model_args, size, config.loss, config.penalties).peak for size in (size_D, size_G))
        memory_text = f"~{peak / 2**30:.1f} GiB peak per {unit}"
        if config.device != "cpu" and peak > memory:
            memory_text += f" (over the {memory / 2**30:g} GiB of resources.gpu_mem_gb: lower batch_gpu)"
    except (ConfigError, RuntimeError, NotImplementedError) as error:  # a network the meta device cannot run
        memory_text = f"memory estimate unavailable ({type(error).__name__})"
    gpus = f"{world} GPUs ({resources.get('nodes', 1)} node(s) x {resources.get('tasks_per_node', 1)})" if resources.get("gpus_per_node") else f"{world} rank(s), no GPU"
    return f"{gpus}, per-{unit} batch {share}, micro-batch D {size_D} x {count_D} / G {size_G} x {count_G}, {memory_text}"
