"""One training run from a composed config: check, build, fit, test.

    metrics, objects = train(cfg)

`train` is what `python train.py` calls inside `vaelab.lifecycle.lifecycle` (the folder's lock and status.json),
and what a test or a notebook calls in process with a config from Hydra's compose API
(`return_hydra_config=True`, then `HydraConfig.instance().set_config(cfg)`).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vaelab.atomic import AtomicCheckpointIO
from vaelab.build import build
from vaelab.callbacks.collapse import CollapseCheck
from vaelab.callbacks.log_interval import LogInterval
from vaelab.components import check_optimizers
from vaelab.config_tree import print_config_tree
from vaelab.errors import ConfigError
from vaelab.lifecycle import RunStatus
from vaelab.loggers import ResumableCSVLogger
from vaelab.preflight import check_trainer
from vaelab.resume import CHECKPOINT, continue_run, saved_run
from vaelab.schema import check_targets, constructed

BEST = "val/elbo_best"   # the metric of the best checkpoint, what a sweeper maximises
log = logging.getLogger("vaelab")


def built_callbacks(callbacks, trainer) -> list:
    """A run's callbacks: every one in the callbacks group, except the progress bar where trainer.enable_progress_bar
    is false (Lightning refuses a progress bar callback then). One that its class refuses is refused naming the key
    (callbacks.checkpoint.mode=maxx, which Lightning's ModelCheckpoint raises on), before any work."""
    return [constructed(c, f"callbacks.{name}", keys_named=True) for name, c in callbacks.items()
            if name != "progress_bar" or trainer.enable_progress_bar]


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
    """The run Hydra is running, prepared: every check first, then every build that can refuse, before anything
    is written. Raises ConfigError on bad input."""
    hydra_cfg = HydraConfig.get()
    choices = dict(hydra_cfg.runtime.choices)
    run_dir = Path(cfg.resume or hydra_cfg.runtime.output_dir).absolute()
    if multirun():
        spread_over_gpus(cfg, hydra_cfg.job.num)
    step = None
    if cfg.resume:
        cfg, choices, step = saved_run(run_dir, list(hydra_cfg.overrides.task))
    for key in ("trainer", "callbacks", "logger", "optimizer", "prior_optimizer", "scheduler"):
        check_targets(cfg.get(key), key)
    check_trainer(cfg.trainer)
    check_optimizers(cfg)
    callbacks = built_callbacks(cfg.callbacks, cfg.trainer)
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in config.yaml; a log line would outlive a refusal
    try:
        module, datamodule = build(cfg, choices)
    except OmegaConfBaseException as e:   # a saved config from another version of vaelab: a missing key, say
        if not cfg.resume:
            raise
        raise ConfigError(f"resume={str(run_dir)!r} is not accepted: its config.yaml does not fit this version of "
                          f"vaelab ({type(e).__name__}: {str(e).splitlines()[0]}); the folder is left as it was") from e
    return Prepared(cfg, choices, run_dir, module, datamodule, callbacks, step)


def train(cfg: DictConfig) -> tuple[dict, dict]:
    """Check and build the run Hydra is running (`prepare`), fit it (from its last checkpoint when resuming) and
    test its best checkpoint. Returns (metrics, objects): the trainer's metrics as floats with BEST, the best
    val/elbo; and cfg (the saved one when resuming), module, datamodule, trainer, callbacks, loggers and collapse
    (whose `found` holds the signs of posterior collapse at test)."""
    run = prepare(cfg)
    cfg, run_dir = run.cfg, run.run_dir
    log.info("run folder: %s", run_dir)
    if cfg.get("extras", {}).get("print_config"):
        print_config_tree(cfg)
    if run.resume_step is not None:
        continue_run(run_dir, run.resume_step)
    loggers = own_record([instantiate(c) for c in cfg.logger.values()], run_dir)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    for logger in loggers:
        logger.log_hyperparams({**flat_keys(cfg, run.choices), "config": OmegaConf.to_container(cfg, resolve=True)})
    collapse = CollapseCheck()
    callbacks = [*run.callbacks, LogInterval(cfg.trainer.log_every_n_steps), collapse, RunStatus(run_dir)]
    trainer = instantiate(cfg.trainer, logger=loggers, callbacks=callbacks, default_root_dir=run_dir,
                          plugins=[AtomicCheckpointIO()])   # a failed write keeps the previous checkpoint whole
    trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=run_dir / CHECKPOINT if cfg.resume else None,
                weights_only=True)   # explicit: no environment variable turns the safe unpickler off
    best = trainer.checkpoint_callback
    trainer.test(run.module, datamodule=run.datamodule, ckpt_path="best" if best and best.best_model_path else None,
                 weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if best and best.best_model_score is not None:
        metrics[BEST] = float(best.best_model_score)
    objects = dict(cfg=cfg, module=run.module, datamodule=run.datamodule, trainer=trainer, callbacks=callbacks,
                   loggers=loggers, collapse=collapse)
    return metrics, objects


def own_record(loggers, run_dir) -> list:
    """The run's loggers, with the CSV record in RUN_DIR/csv added where no CSV logger is chosen: reports and
    resumption read that record, whichever dashboards are on."""
    if any(isinstance(logger, CSVLogger) for logger in loggers):
        return loggers
    return [*loggers, ResumableCSVLogger(save_dir=run_dir, name="", version="csv")]
