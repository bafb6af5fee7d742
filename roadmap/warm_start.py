"""`init_from=RUN_DIR`: start a new run from another run's G, D and G_ema weights (fine-tuning; paper Section 4's published Config E networks as a start).

A start, not a resume: optimizer moments, kimg, the schedules (lr, gamma, beta2, EMA, augmentation
ramps) and every random stream begin at zero as in any new run; only the three networks' weights are
copied. The source may be one of our runs or an imported official checkpoint (roadmap/official.py).
It must build the same networks: the same configuration (`model`) and the same architecture
options (`model_args`, apart from the precision options, which change no tensor).
"""
from pathlib import Path

import yaml

from roadmap.errors import ConfigError

PRECISION_OPTIONS = ("precision", "low_precision_stages", "precision_events")  # change no tensor shape


def _architecture(model_args: dict) -> dict:
    return {key: value for key, value in (model_args or {}).items() if key not in PRECISION_OPTIONS}


def check_init_from(config) -> None:
    """ConfigError before any job starts: `init_from` must be a run folder of the same model and architecture.

    A relative path is made absolute here, since jobs may start in another working directory.
    """
    if not isinstance(config.init_from, str) or not config.init_from:
        raise ConfigError(f"init_from: expected a run folder path, got {config.init_from!r}")
    source = Path(config.init_from).resolve()
    if not (source / "config.yaml").is_file() or not any((source / name).is_file() for name in
                                                        ("checkpoint.pt", "checkpoint-previous.pt")):
        raise ConfigError(f"init_from: {config.init_from!r} is not a run folder with config.yaml and checkpoint.pt")
    try:
        stored = yaml.safe_load((source / "config.yaml").read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"init_from: {config.init_from!r} has an unreadable config.yaml ({type(error).__name__})") from None
    if not isinstance(stored, dict):
        raise ConfigError(f"init_from: {config.init_from!r} has a config.yaml that is not a mapping")
    model, model_args = stored.get("model"), _architecture(stored.get("model_args"))
    if model != config.model or model_args != _architecture(config.model_args):
        raise ConfigError(f"init_from: {config.init_from!r} holds model {model} with model_args {model_args}; this run "
                          f"builds model {config.model} with {_architecture(config.model_args)} (set the same model and model_args)")
    official = source / "official.json"  # an imported checkpoint lists the networks its snapshot held
    if official.is_file():
        from roadmap import files

        networks = (files.read_json(official) or {}).get("networks") or ["D"]
        if "D" not in networks:
            raise ConfigError(f"init_from: {config.init_from!r} holds no discriminator (a G_ema-only snapshot); "
                              "fine-tuning needs D")
    config.init_from = str(source)


def load_initial_weights(run_dir, generator, discriminator, generator_ema) -> None:
    """Copy G, D and G_ema of run folder `run_dir`'s checkpoint into the new run's networks (strict names and shapes)."""
    from roadmap import files

    checkpoint = files.load_checkpoint(run_dir)
    if checkpoint is None:
        raise ConfigError(f"init_from: {str(run_dir)!r} has no readable checkpoint.pt")
    if "discriminator" not in checkpoint:
        raise ConfigError(f"init_from: {str(run_dir)!r} holds no discriminator (a G_ema-only snapshot); fine-tuning needs D")
    try:
        generator.load_state_dict(checkpoint["generator"])
        discriminator.load_state_dict(checkpoint["discriminator"])
        generator_ema.load_state_dict(checkpoint.get("generator_ema", checkpoint["generator"]))
    except (KeyError, RuntimeError) as error:
        raise ConfigError(f"init_from: {str(run_dir)!r} does not fit this run's networks "
                          f"({type(error).__name__}: {str(error).splitlines()[0][:160]})") from None
