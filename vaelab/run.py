"""One training run from a composed config: build, fit, test, record.

    best_val_elbo = train(cfg)

`train` is what `python train.py` calls, and what a test or a notebook calls in process with a config from
Hydra's compose API (`return_hydra_config=True`, then `HydraConfig.instance().set_config(cfg)`).
"""

import logging
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vaelab.build import build
from vaelab.callbacks.collapse import CollapseCheck
from vaelab.callbacks.log_interval import LogInterval
from vaelab.components import check_optimizer
from vaelab.config_tree import print_config_tree
from vaelab.errors import ConfigError, refusal, require
from vaelab.loggers import ResumableCSVLogger
from vaelab.preflight import check_trainer
from vaelab.resume import CHECKPOINT, continue_run, saved_run, trim_metrics
from vaelab.schema import check_targets
from vaelab.status import RunBusy, ended, held, outcome, read_status, recorded, status_of, write_status

log = logging.getLogger("vaelab")


def callback_configs(callbacks, trainer) -> list:
    """The configs of a run's callbacks: every one in the callbacks group, except the progress bar where
    trainer.enable_progress_bar is false (Lightning refuses a progress bar callback then)."""
    return [c for name, c in callbacks.items() if name != "progress_bar" or trainer.enable_progress_bar]


def flat_keys(cfg, choices):
    """The keys dashboards group and filter runs by: the choices, S, lr, seed and the estimator's own options
    (loss.baseline, loss.decoder, ...)."""
    options = {f"loss.{k}": v for k, v in OmegaConf.to_container(cfg.loss, resolve=True).items() if k != "_target_"}
    return {"loss": choices["loss"], "latent": choices["latent"], "dataset": choices["dataset"],
            "S": cfg.S, "lr": cfg.lr, "seed": cfg.seed, **options}


def multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def spread_over_gpus(cfg, job_num):
    """Jobs sharing a machine take its GPUs in turn: job n trains on GPU n mod (visible GPUs). Chosen through
    Lightning's `devices=[k]` rather than CUDA_VISIBLE_DEVICES, which CUDA reads once per process while
    joblib's workers are reused across jobs."""
    if cfg.trainer.accelerator in ("auto", "gpu", "cuda") and cfg.trainer.devices == 1 and torch.cuda.is_available():
        cfg.trainer.accelerator, cfg.trainer.devices = "gpu", [job_num % torch.cuda.device_count()]


@dataclass
class Prepared:
    """A run ready to fit: its config (the saved one when resuming), group choices, folder and built objects."""

    cfg: DictConfig
    choices: dict
    run_dir: Path
    module: L.LightningModule
    datamodule: L.LightningDataModule
    callbacks: list
    resume_step: int | None = None   # the step of the checkpoint a resumed run continues from


def prepare(cfg: DictConfig) -> Prepared:
    """The run Hydra is running, prepared: every check and every build that can refuse, before anything is
    written. Raises ConfigError on bad input."""
    hydra_cfg = HydraConfig.get()
    choices = dict(hydra_cfg.runtime.choices)
    run_dir = Path(cfg.resume or hydra_cfg.runtime.output_dir).absolute()
    if multirun():
        spread_over_gpus(cfg, hydra_cfg.job.num)
    step = None
    if cfg.resume:
        cfg, choices, step = saved_run(run_dir, list(hydra_cfg.overrides.task))
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in config.yaml; a log line would outlive a refusal
    try:
        module, datamodule = build(cfg, choices)
    except OmegaConfBaseException as e:   # a saved config from another version of vaelab: a missing key, say
        if not cfg.resume:
            raise
        raise ConfigError(f"resume={str(run_dir)!r} is not accepted: its config.yaml does not fit this version of "
                          f"vaelab ({type(e).__name__}: {str(e).splitlines()[0]}); the folder is left as it was") from e
    for key in ("trainer", "callbacks", "logger", "optimizer"):
        check_targets(cfg.get(key), key)
    check_trainer(cfg.trainer)
    check_optimizer(cfg.get("optimizer"))
    callbacks = [instantiate(c) for c in callback_configs(cfg.callbacks, cfg.trainer)]
    return Prepared(cfg, choices, run_dir, module, datamodule, callbacks, step)


def fit_and_test(run: Prepared) -> float:
    """Fit (from the run's last checkpoint when resuming), test the best checkpoint, and record the outcome in
    status.json; returns the best val/elbo, or -inf for a run that did not finish (the worst, to a maximising
    sweeper)."""
    cfg, choices, run_dir, module, datamodule = run.cfg, run.choices, run.run_dir, run.module, run.datamodule
    if run.resume_step is not None:
        continue_run(run_dir, run.resume_step)
    with recorded(run_dir, swallow=multirun()) as status:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        loggers = own_record([instantiate(c) for c in cfg.logger.values()], run_dir)
        for logger in loggers:
            logger.log_hyperparams({**flat_keys(cfg, choices), "config": OmegaConf.to_container(cfg, resolve=True)})
        interval, collapse = LogInterval(cfg.trainer.log_every_n_steps), CollapseCheck()
        trainer = instantiate(cfg.trainer, logger=loggers, callbacks=[*run.callbacks, interval, collapse, status],
                              default_root_dir=run_dir)
        trainer.fit(module, datamodule=datamodule, ckpt_path=run_dir / CHECKPOINT if cfg.resume else None,
                    weights_only=True)   # explicit: no environment variable turns the safe unpickler off
        best = trainer.checkpoint_callback
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if best and best.best_model_path else None,
                     weights_only=True)
        status.result = float(best.best_model_score) if best and best.best_model_score is not None else None
        status.extra["collapse"] = collapse.found
    return status.result if status_of(run_dir) == "done" else float("-inf")


def own_record(loggers, run_dir) -> list:
    """The run's loggers, with the CSV record in RUN_DIR/csv added where no CSV logger is chosen: reports and
    resumption read that record, whichever dashboards are on."""
    if any(isinstance(logger, CSVLogger) for logger in loggers):
        return loggers
    return [*loggers, ResumableCSVLogger(save_dir=run_dir, name="", version="csv")]


def train(cfg: DictConfig) -> float:
    """Train, test and record the run Hydra is running; returns its best val/elbo (what a sweeper maximises).

    The process holds the run folder's lock throughout, so a second process on the folder is refused (a single
    run exits 2; a sweep's job leaves the folder to its owner). With skip_finished=true a run already done
    returns its recorded result at once. A sweep's job found interrupted, or dead (recorded as running with
    nobody holding its lock), continues from its last checkpoint as `resume=` would; any other job found
    started is redone from the start, its old metrics rows dropped.
    """
    run_dir = Path(cfg.resume or HydraConfig.get().runtime.output_dir).absolute()
    key = "resume" if cfg.resume else "hydra.run.dir"
    if cfg.resume:  # before the lock, which would be taken in a folder that may not exist
        require((run_dir / CHECKPOINT).exists(), "resume", str(run_dir), f"a run folder holding {CHECKPOINT}")
    try:  # under DDP, Lightning starts this script again for each further rank: rank 0 owns the folder
        with held(run_dir, key) if rank_zero_only.rank == 0 else nullcontext():
            return attempt(cfg, run_dir)
    except RunBusy as e:
        if not multirun():
            raise
        log.warning("left alone: %s", e)
        return float("-inf")


def attempt(cfg: DictConfig, run_dir: Path) -> float:
    """`train`'s body, under the run folder's lock."""
    before = (read_status(run_dir) or {}).get("status")
    if cfg.skip_finished and before == "done":
        log.info("%s is done already (skip_finished=true)", run_dir)
        return read_status(run_dir)["result"]
    if multirun() and not cfg.resume and before is not None:
        if before in ("running", "interrupted") and (run_dir / CHECKPOINT).exists():
            log.info("%s was %s: continuing it from %s", run_dir, "interrupted" if before == "interrupted" else
                     "left running by a process that died", CHECKPOINT)
            cfg.resume = str(run_dir)
        else:
            trim_metrics(run_dir, 0)
    try:
        prepared = prepare(cfg)
    except Exception as e:
        if refusal(e) is not None:
            raise
        with suppress(OSError):
            write_status(run_dir, *outcome(e))
        ended(run_dir, e, swallow=multirun())
        return float("-inf")
    log.info("run folder: %s", prepared.run_dir)
    if prepared.cfg.get("extras", {}).get("print_config"):
        print_config_tree(prepared.cfg)
    return fit_and_test(prepared)
