"""Experiment files -> run specs -> jobs through submitit (local, debug, slurm)."""
