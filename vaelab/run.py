"""One training run from a composed config: build, fit, test, record.

    best_val_elbo = train(cfg)

`train` is what `python train.py` calls, and what a test or a notebook calls in process with a config from
Hydra's compose API (`return_hydra_config=True`, then `HydraConfig.instance().set_config(cfg)`).
"""

import logging
from pathlib import Path

import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from vaelab.callbacks.collapse import CollapseCheck
from vaelab.callbacks.log_interval import LogInterval
from vaelab.config_tree import print_config_tree
from vaelab.errors import ConfigError, require
from vaelab.likelihoods import check_fit
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.preflight import check_budget, check_data
from vaelab.resume import CHECKPOINT, saved_run
from vaelab.status import read_status, recorded, status_of

CONF = Path(__file__).resolve().parents[1] / "conf"
log = logging.getLogger("vaelab")


def estimators():
    """Every loss config: name -> (objective, its default S)."""
    found = {}
    for path in sorted((CONF / "loss").glob("*.yaml")):
        cfg = OmegaConf.load(path)
        found[path.stem] = (instantiate(cfg.loss), cfg.get("S", 1))
    return found


def check_estimator(name, objective, kind, S):
    """Refuse a loss x latent x S that cannot train, naming the estimators that can."""
    problems = objective.problems(kind, S)
    if not problems:
        return
    found = estimators().items()
    for_kind = [f"loss={n} (S>={o.min_samples})" for n, (o, _) in found if kind in o.latents]
    at_S = [f"loss={n}" for n, (o, _) in found if not o.problems(kind, S)]
    raise ConfigError(
        f"loss={name} with latent={kind}, S={S}: {'; '.join(problems)}. "
        f"Estimators for latent={kind}: {', '.join(for_kind) or 'none'}; "
        f"of those, with S={S}: {', '.join(at_S) or 'none'}.")


def pick_likelihood(cfg, choices, datamodule):
    """`likelihood=...` if given, else the data set's own (recorded in cfg); refused where it is no
    density on the data's values."""
    name = choices.get("likelihood") or datamodule.likelihood
    if cfg.get("likelihood") is None:
        with open_dict(cfg):
            cfg.likelihood = OmegaConf.load(CONF / "likelihood" / f"{name}.yaml")
    likelihood = instantiate(cfg.likelihood)
    check_fit(likelihood, name, datamodule.support, choices["dataset"])
    return likelihood


def build(cfg, choices) -> tuple[VAEModule, L.LightningDataModule]:
    """The module and data module of a run, from its config and group choices; cheap checks first, so that
    bad values fail before data loads. Serves training and `vaelab.evaluate` alike."""
    check_budget(cfg.trainer)
    require(cfg.get("compile", False) in (True, False), "compile", cfg.get("compile"), "true or false")
    latent, objective = instantiate(cfg.latent), instantiate(cfg.loss)
    check_estimator(choices["loss"], objective, latent.kind, cfg.S)
    module_args = dict(S=cfg.S, lr=cfg.lr, eval_samples=cfg.eval_samples,
                       nll_samples=cfg.nll_samples, nll_chunk=cfg.nll_chunk)
    datamodule = instantiate(cfg.dataset)
    check_data(datamodule)
    vae = VAE(latent, pick_likelihood(cfg, choices, datamodule), datamodule.event_shape, **instantiate(cfg.net))
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
    L.seed_everything(cfg.seed, workers=True)
    module, datamodule = build(cfg, choices)
    callbacks = [instantiate(c) for c in callback_configs(cfg.callbacks, cfg.trainer)]
    return cfg, choices, run_dir, module, datamodule, callbacks


def fit_and_test(cfg, choices, run_dir, module, datamodule, callbacks) -> float:
    """Fit (from the run's last checkpoint when resuming), test the best checkpoint, and record the outcome in
    status.json; returns the best val/elbo, or -inf for a run that did not finish (the worst, to a maximising
    sweeper)."""
    with recorded(run_dir, exit=not multirun()) as status:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        loggers = [instantiate(c) for c in cfg.logger.values()]
        for logger in loggers:
            logger.log_hyperparams({**flat_keys(cfg, choices), "config": OmegaConf.to_container(cfg, resolve=True)})
        interval, collapse = LogInterval(cfg.trainer.log_every_n_steps), CollapseCheck()
        trainer = instantiate(cfg.trainer, logger=loggers, callbacks=[*callbacks, interval, collapse, status],
                              default_root_dir=run_dir)
        trainer.fit(module, datamodule=datamodule, ckpt_path=run_dir / CHECKPOINT if cfg.resume else None)
        best = trainer.checkpoint_callback
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if best and best.best_model_path else None)
        status.result = float(best.best_model_score) if best and best.best_model_score is not None else None
        status.extra["collapse"] = collapse.found
    return status.result if status_of(run_dir) == "done" else float("-inf")


def train(cfg: DictConfig) -> float:
    """Train, test and record the run Hydra is running; returns its best val/elbo (what a sweeper maximises).
    With skip_finished=true a run already done returns its recorded result at once."""
    run_dir = Path(cfg.resume or HydraConfig.get().runtime.output_dir).absolute()
    if cfg.skip_finished and status_of(run_dir) == "done":
        log.info("%s is done already (skip_finished=true)", run_dir)
        return read_status(run_dir)["result"]
    prepared = prepare(cfg)
    log.info("run folder: %s", prepared[2])
    if prepared[0].get("extras", {}).get("print_config"):
        print_config_tree(prepared[0])
    return fit_and_test(*prepared)
