"""Continuing a run: its saved config and choices, its metrics trimmed to its checkpoint, and its W&B run id."""

import csv
import os
from pathlib import Path

import torch
from omegaconf import OmegaConf

from vaelab.errors import ConfigError, require

CHECKPOINT = Path("checkpoints") / "last.ckpt"


def saved_run(run_dir, overrides: list[str]):
    """(config, group choices) that `run_dir` was started with, with `overrides` ("key=value") applied.

    Plain keys may change (trainer.max_epochs=20 extends a run); a config group may not, since
    that would be another experiment.
    """
    run_dir = Path(run_dir)
    for name in (CHECKPOINT, Path("config.yaml"), Path(".hydra") / "hydra.yaml"):
        require((run_dir / name).exists(), "resume", str(run_dir), f"a run folder holding {name}")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    hydra = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra
    started_in = OmegaConf.select(hydra, "runtime.output_dir")
    require(started_in is None or Path(started_in).resolve() == run_dir.resolve(), "resume", str(run_dir),
            f"the folder the run was started in, {started_in}: its saved config and checkpoint state name paths "
            "there, so a moved run folder resumes only once moved back")
    choices = dict(hydra.runtime.choices)
    plain = []
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if key == "resume":
            continue
        if key in choices:
            require(value == choices[key], key, value,
                    f"{choices[key]!r}, the run's own: a resumed run keeps its config groups")
            continue
        plain.append(f"{key}={value}")
    try:
        OmegaConf.set_struct(cfg, True)
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(plain))
    except Exception as e:  # noqa: BLE001 - OmegaConf's errors for a key the run does not have
        raise ConfigError(f"resume with {' '.join(plain)} is not accepted: {e}") from e
    OmegaConf.set_struct(cfg, False)
    trim_metrics(run_dir, torch.load(run_dir / CHECKPOINT, map_location="cpu", mmap=True, weights_only=False)["global_step"])
    if (run_dir / "wandb_id").exists():
        os.environ["WANDB_RUN_ID"] = (run_dir / "wandb_id").read_text().strip()
        os.environ.setdefault("WANDB_RESUME", "allow")
    return cfg, choices


def trim_metrics(run_dir: Path, step: int):
    """Drop the rows of every metrics.csv in `run_dir` logged at or after `step`: that training is redone."""
    for path in run_dir.rglob("metrics.csv"):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, [r for r in reader if int(r["step"]) < step]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
