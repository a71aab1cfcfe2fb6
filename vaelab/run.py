"""One training run from a composed config: build, fit, test, record.

    best_val_elbo = train(cfg)

`train` is what `python train.py` calls, and what a test or a notebook calls in process with a config from
Hydra's compose API (`return_hydra_config=True`, then `HydraConfig.instance().set_config(cfg)`).
"""

import logging
from contextlib import nullcontext, suppress
from functools import cache
from pathlib import Path

import lightning.pytorch as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from vaelab.callbacks.collapse import CollapseCheck
from vaelab.callbacks.log_interval import LogInterval
from vaelab.components import check_components, check_optimizer
from vaelab.config_tree import print_config_tree
from vaelab.errors import ConfigError, refusal, require
from vaelab.likelihoods import check_fit
from vaelab.loggers import ResumableCSVLogger
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.preflight import check_budget, check_data, check_trainer
from vaelab.resume import CHECKPOINT, saved_run, trim_metrics
from vaelab.schema import check_kwargs, check_targets, under
from vaelab.status import RunBusy, ended, held, outcome, read_status, recorded, status_of, write_status

CONF = Path(__file__).resolve().parents[1] / "conf"
log = logging.getLogger("vaelab")


def conf_dir():
    """Hydra's compose API on conf/: the running app's (train.py, a test's initialize) if there is one."""
    return nullcontext() if GlobalHydra.instance().is_initialized() else initialize_config_dir(str(CONF), version_base="1.3")


@cache
def estimators():
    """Every loss config, composed by Hydra (a variant such as loss=iwae_dreg extends another through its
    defaults list): name -> (objective, its default S). Composed once a process: the files do not change under it,
    and callers only ask the objectives what they support."""
    found = {}
    with conf_dir():
        for path in sorted((CONF / "loss").glob("*.yaml")):
            cfg = compose(f"loss/{path.stem}")
            found[path.stem] = (instantiate(cfg.loss), cfg.get("S", 1))
    return found


def check_estimator(name, objective, kind, S, depth=1):
    """Refuse a loss x latent x S that cannot train, naming the estimators that can. `kind`: the latent's kind, or
    each layer's (`Hierarchical.kinds`): an estimator trains a mix of kinds when it supports every one of them."""
    kinds = list(dict.fromkeys([kind] if isinstance(kind, str) else kind))

    def problems(o, S):
        return list(dict.fromkeys(p for k in kinds for p in o.problems(k, S, depth)))

    if not problems(objective, S):
        return
    found = estimators().items()
    for_kind = [f"loss={n} (S>={o.min_samples})" for n, (o, _) in found if not problems(o, o.min_samples)]
    at_S = [f"loss={n}" for n, (o, _) in found if not problems(o, S)]
    latent = kinds[0] if len(kinds) == 1 else f"[{', '.join(kinds)}]"
    latent = f"{latent} (L={depth})" if depth > 1 else latent
    raise ConfigError(
        f"loss={name} with latent={latent}, S={S}: {'; '.join(problems(objective, S))}. "
        f"Estimators for latent={latent}: {', '.join(for_kind) or 'none'}; "
        f"of those, with S={S}: {', '.join(at_S) or 'none'}.")


def pick_likelihood(cfg, choices, datamodule):
    """`likelihood=...` if given, else the data set's own (recorded in cfg); refused where it is no
    density on the data's values."""
    name = choices.get("likelihood") or datamodule.likelihood
    if cfg.get("likelihood") is None:
        with open_dict(cfg):
            cfg.likelihood = OmegaConf.load(CONF / "likelihood" / f"{name}.yaml")
    check_targets(cfg.likelihood, "likelihood")
    with under("likelihood"):
        likelihood = instantiate(cfg.likelihood)
    check_fit(likelihood, name, datamodule.support, choices["dataset"])
    return likelihood


def build(cfg, choices) -> tuple[VAEModule, L.LightningDataModule]:
    """The module and data module of a run, from its config and group choices; cheap checks first, so that
    bad values fail before data loads. Serves training and `vaelab.evaluate` alike."""
    check_budget(cfg.trainer)
    require(cfg.get("compile", False) in (True, False), "compile", cfg.get("compile"), "true or false")
    for key in ("dataset", "latent", "loss"):
        check_targets(cfg[key], key)
    check_kwargs(cfg.net, "net", VAE, given=("latent", "likelihood", "event_shape", "pixel_means"))
    with under("latent"):
        latent = instantiate(cfg.latent)
    with under("loss"):
        objective = instantiate(cfg.loss)
    check_estimator(choices["loss"], objective, getattr(latent, "kinds", latent.kind), cfg.S, latent.depth)
    module_args = dict(S=cfg.S, lr=cfg.lr, eval_samples=cfg.eval_samples,
                       nll_samples=cfg.nll_samples, nll_chunk=cfg.nll_chunk,
                       optimizer=instantiate(cfg.optimizer) if cfg.get("optimizer") else None,
                       scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
                       prior_optimizer=instantiate(cfg.prior_optimizer) if cfg.get("prior_optimizer") else None)
    require(not cfg.get("prior_optimizer") or cfg.trainer.get("gradient_clip_val") is None, "trainer.gradient_clip_val",
            cfg.trainer.get("gradient_clip_val"), "null with a prior_optimizer (Lightning would clip the optimiser's "
            "parameters only, not the prior's)")
    with under("dataset"):
        datamodule = instantiate(cfg.dataset)
    check_data(datamodule)
    likelihood = pick_likelihood(cfg, choices, datamodule)
    with under("net"):
        net = instantiate(cfg.net)
        if net.get("centre") == "mean" or net.get("bias_from_data") is True:  # the data set's E[x]: a load of it
            net["pixel_means"] = datamodule.pixel_means()
        vae = VAE(latent, likelihood, datamodule.event_shape, **net)
    check_components(vae, objective, cfg.S)
    if cfg.get("compile", False):
        vae.compile_networks()
    return VAEModule(vae, objective, **module_args), datamodule


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


def prepare(cfg: DictConfig):
    """(config, choices, run folder, module, data module, callbacks) of the run Hydra is running: every check
    and every build that can refuse, before anything is written. Raises ConfigError on bad input."""
    hydra_cfg = HydraConfig.get()
    choices = dict(hydra_cfg.runtime.choices)
    run_dir = Path(cfg.resume or hydra_cfg.runtime.output_dir).absolute()
    if multirun():
        spread_over_gpus(cfg, hydra_cfg.job.num)
    if cfg.resume:
        cfg, choices = saved_run(run_dir, list(hydra_cfg.overrides.task))
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in config.yaml; a log line would outlive a refusal
    module, datamodule = build(cfg, choices)
    for key in ("trainer", "callbacks", "logger", "optimizer"):
        check_targets(cfg.get(key), key)
    check_trainer(cfg.trainer)
    check_optimizer(cfg.get("optimizer"))
    callbacks = [instantiate(c) for c in callback_configs(cfg.callbacks, cfg.trainer)]
    return cfg, choices, run_dir, module, datamodule, callbacks


def fit_and_test(cfg, choices, run_dir, module, datamodule, callbacks) -> float:
    """Fit (from the run's last checkpoint when resuming), test the best checkpoint, and record the outcome in
    status.json; returns the best val/elbo, or -inf for a run that did not finish (the worst, to a maximising
    sweeper)."""
    with recorded(run_dir, exit=not multirun()) as status:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        loggers = own_record([instantiate(c) for c in cfg.logger.values()], run_dir)
        for logger in loggers:
            logger.log_hyperparams({**flat_keys(cfg, choices), "config": OmegaConf.to_container(cfg, resolve=True)})
        interval, collapse = LogInterval(cfg.trainer.log_every_n_steps), CollapseCheck()
        trainer = instantiate(cfg.trainer, logger=loggers, callbacks=[*callbacks, interval, collapse, status],
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
        ended(run_dir, e, exit=not multirun())
        return float("-inf")
    log.info("run folder: %s", prepared[2])
    if prepared[0].get("extras", {}).get("print_config"):
        print_config_tree(prepared[0])
    return fit_and_test(*prepared)
