"""Continuing a run: its saved config and choices, its metrics trimmed to its checkpoint, and its W&B run id."""

import csv
import io
import os
from pathlib import Path

from omegaconf import OmegaConf

from vaelab.checkpoint import load_checkpoint
from vaelab.errors import ConfigError, require
from vaelab.trust import saved_config

CHECKPOINT = Path("checkpoints") / "last.ckpt"


def saved_run(run_dir, overrides: list[str]):
    """(config, group choices, checkpoint step) that `run_dir` was started with, with `overrides` ("key=value")
    applied. Reads the folder and changes nothing in it: `continue_run` trims its metrics once every check passed.

    Plain keys may change (trainer.max_epochs=20 extends a run); a config group may not, since
    that would be another experiment.
    """
    run_dir = Path(run_dir)
    for name in (CHECKPOINT, Path("config.yaml"), Path(".hydra") / "hydra.yaml"):
        require((run_dir / name).exists(), "resume", str(run_dir), f"a run folder holding {name}")
    trusted = next((OmegaConf.from_dotlist([o]).trusted_targets for o in overrides if o.startswith("trusted_targets=")), [])
    typed = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].endswith("._target_")]  # the user's own
    trusted = [*trusted, *typed]
    hydra = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra
    cfg = saved_config(run_dir, "resume", run_dir, trusted, "if you trust it, resume with trusted_targets=[TARGET]")
    choices = dict(hydra.runtime.choices)
    plain = []
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if key in ("resume", "trusted_targets"):
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
    cfg.resume = str(run_dir)   # the saved config is the first attempt's, which had none
    best = run_dir / "checkpoints" / "best.ckpt"
    remedy = (f"to continue from the best epoch instead, copy {best} over it and resume again; or start the run afresh"
              if best.exists() else "start the run afresh")
    step = load_checkpoint(run_dir / CHECKPOINT, "resume", remedy, optimizer=True)["global_step"]
    return cfg, choices, step


def continue_run(run_dir: Path, step: int):
    """Make `run_dir` ready to continue from its checkpoint at `step`: drop the metrics rows logged since, and
    resume its W&B run, if it had one."""
    trim_metrics(run_dir, step)
    if (run_dir / "wandb_id").exists():
        os.environ["WANDB_RUN_ID"] = (run_dir / "wandb_id").read_text().strip()
        os.environ.setdefault("WANDB_RESUME", "allow")


def logged_before(row: dict, step: int) -> bool:
    """Whether a metrics.csv row was logged before `step`; a row cut short (no step) is not kept."""
    try:
        return int(row["step"]) < step
    except (TypeError, ValueError):
        return False


def trim_metrics(run_dir: Path, step: int):
    """Drop the rows of every metrics.csv in `run_dir` logged at or after `step`: that training is redone.
    A last row cut short (the process died while writing it) is dropped too."""
    for path in run_dir.rglob("metrics.csv"):
        text = path.read_text()
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]   # a line without its end is a write that did not finish
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = reader.fieldnames
        rows = [{k: v for k, v in r.items() if k is not None} for r in reader if logged_before(r, step)]
        if fields is None:
            continue
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
