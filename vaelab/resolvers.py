"""The OmegaConf resolvers that vaelab's configs use; registered before Hydra composes a config."""

import hashlib
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf


def sweep_group():
    """The W&B group of a run: the sweep it belongs to (its directory), none for a single run."""
    hydra = HydraConfig.get()
    return hydra.sweep.dir if hydra.mode == RunMode.MULTIRUN else None


NAME_BYTES = 128   # a folder name well under every file system's limit (255 bytes on most)


def short_name(name: str) -> str:
    """A run folder's name from its overrides: `name` itself when short, else its start and a hash of the whole,
    so that names stay distinct and stable across reruns (the overrides are kept in the run's .hydra/)."""
    if len(name.encode()) <= NAME_BYTES:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return name.encode()[: NAME_BYTES - len(digest) - 1].decode(errors="ignore") + "~" + digest


def register_resolvers():
    OmegaConf.register_new_resolver("isatty", lambda: sys.stdout.isatty(), replace=True)
    OmegaConf.register_new_resolver("if_resume", lambda resume, then, fresh: fresh if resume is None else then,
                                    replace=True)
    OmegaConf.register_new_resolver("sweep_group", sweep_group, replace=True)
    OmegaConf.register_new_resolver("short_name", short_name, replace=True)
