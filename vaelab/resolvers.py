"""The OmegaConf resolvers that vaelab's configs use; registered before Hydra composes a config."""

import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf


def sweep_group():
    """The W&B group of a run: the sweep it belongs to (its directory), none for a single run."""
    hydra = HydraConfig.get()
    return hydra.sweep.dir if hydra.mode == RunMode.MULTIRUN else None


def job_label():
    """What each log line of a sweep's job starts with, "[job N: its overrides] ", so that the lines of jobs run
    in parallel (joblib) can be told apart; nothing for a single run."""
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return ""
    return f"[job {hydra.job.num}: {hydra.job.override_dirname or 'defaults'}] "


def register_resolvers():
    OmegaConf.register_new_resolver("isatty", lambda: sys.stdout.isatty(), replace=True)
    OmegaConf.register_new_resolver("if_resume", lambda resume, then, fresh: fresh if resume is None else then,
                                    replace=True)
    OmegaConf.register_new_resolver("sweep_group", sweep_group, replace=True)
    OmegaConf.register_new_resolver("job_label", job_label, replace=True)
