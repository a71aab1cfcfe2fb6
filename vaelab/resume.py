"""Continuing a run: its saved config and choices, its RNG state, its W&B run id, and a checkpoint on interruption."""

import csv
import io
import os
import random
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.trainer.states import TrainerFn
from omegaconf import OmegaConf

from vaelab.errors import ConfigError, require
from vaelab.status import INTERRUPTS

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


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that it continues an existing metrics.csv (a resumed run) where
    Lightning's would delete it."""

    @property
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = Path(self.log_dir) / "metrics.csv"
        kept = path.read_text() if path.exists() else None
        experiment = super().experiment
        if kept:
            path.write_text(kept)
            experiment.metrics_keys = next(csv.reader(io.StringIO(kept)))
        return experiment


class RNGState(L.Callback):
    """Keeps Python's, NumPy's and torch's (CPU and CUDA) random states in every checkpoint and restores
    them on resume, so a resumed run draws the same samples as one that was never stopped."""

    def state_dict(self):
        numpy = np.random.get_state(legacy=False)
        return {"python": random.getstate(), "numpy": {**numpy, "state": {
                    "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)), "pos": numpy["state"]["pos"]}},
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state_dict(self, state_dict):
        random.setstate(state_dict["python"])
        numpy = state_dict["numpy"]
        np.random.set_state({**numpy, "state": {"key": numpy["state"]["key"].numpy().astype(np.uint32),
                                                "pos": numpy["state"]["pos"]}})
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class InterruptCheckpoint(L.Callback):
    """On SIGTERM (pre-emption) or SIGINT (Ctrl-C) during fit, saves the trainer's state to `path`
    before Lightning exits, so that `resume=RUN_DIR` continues from there."""

    def __init__(self, path):
        self.path = str(path)

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, INTERRUPTS) and trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.path)
