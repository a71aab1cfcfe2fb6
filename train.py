"""Train one VAE: `python train.py loss=variance latent=discrete` (add -m for a sweep)."""

import sys
from pathlib import Path

import hydra
import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from vaelab.errors import ConfigError
from vaelab.likelihoods import check_fit
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.runs import recorded, result, status

CONF = Path(__file__).parent / "conf"
OmegaConf.register_new_resolver("isatty", lambda: sys.stdout.isatty(), replace=True)


def multirun():
    return HydraConfig.get().mode == RunMode.MULTIRUN


# The W&B group of a run: the sweep it belongs to (its directory), none for a single run.
OmegaConf.register_new_resolver("sweep_group", lambda: HydraConfig.get().sweep.dir if multirun() else None,
                                replace=True)


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


def pick_likelihood(cfg, datamodule):
    """`likelihood=...` if given, else the data set's own (recorded in cfg); refused where it is no
    density on the data's values."""
    choices = HydraConfig.get().runtime.choices
    name = choices.get("likelihood") or datamodule.likelihood
    if cfg.get("likelihood") is None:
        with open_dict(cfg):
            cfg.likelihood = OmegaConf.load(CONF / "likelihood" / f"{name}.yaml")
    likelihood = instantiate(cfg.likelihood)
    check_fit(likelihood, name, datamodule.support, choices["dataset"])
    return likelihood


def build(cfg):
    """Everything a run needs, built from config; cheap parts first so bad values fail before data loads."""
    choices = HydraConfig.get().runtime.choices
    latent, objective = instantiate(cfg.latent), instantiate(cfg.loss)
    check_estimator(choices["loss"], objective, latent.kind, cfg.S)
    module_args = dict(S=cfg.S, lr=cfg.lr, eval_samples=cfg.eval_samples,
                       nll_samples=cfg.nll_samples, nll_chunk=cfg.nll_chunk)
    datamodule = instantiate(cfg.dataset)
    vae = VAE(latent, pick_likelihood(cfg, datamodule), datamodule.event_shape, **instantiate(cfg.net))
    return VAEModule(vae, objective, **module_args), datamodule


def flat_keys(cfg):
    choices = HydraConfig.get().runtime.choices
    return {"loss": choices["loss"], "latent": choices["latent"], "dataset": choices["dataset"],
            "S": cfg.S, "seed": cfg.seed}


def spread_over_gpus(cfg, job_num):
    """Jobs sharing a machine take its GPUs in turn: job n trains on GPU n mod (visible GPUs). Chosen through
    Lightning's `devices=[k]` rather than CUDA_VISIBLE_DEVICES, which CUDA reads once per process while
    joblib's workers are reused across jobs."""
    if cfg.trainer.accelerator in ("auto", "gpu", "cuda") and cfg.trainer.devices == 1 and torch.cuda.is_available():
        cfg.trainer.accelerator, cfg.trainer.devices = "gpu", [job_num % torch.cuda.device_count()]


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig):
    """One run. A multirun job records its outcome (done, skipped, failed) in its directory and returns,
    so that one bad job never stops a sweep; with skip_finished=true a run already done is not redone."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if cfg.skip_finished and status(run_dir) == "done":
        print(f"vaelab: {run_dir} is done already (skip_finished=true)", file=sys.stderr)
        return result(run_dir)
    if multirun():
        spread_over_gpus(cfg, hydra_cfg.job.num)
    with recorded(run_dir, keep_going=multirun()) as outcome:
        outcome.result = train(cfg, run_dir)
    return outcome.result if status(run_dir) == "done" else float("-inf")   # the worst, to a maximising sweeper


def train(cfg: DictConfig, run_dir: Path):
    """Fit, then test with the best checkpoint; returns the best val/elbo (what a sweeper maximises)."""
    L.seed_everything(cfg.seed, workers=True)
    module, datamodule = build(cfg)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    loggers = [instantiate(c) for c in cfg.logger.values()]
    for logger in loggers:
        logger.log_hyperparams({**flat_keys(cfg), "config": OmegaConf.to_container(cfg, resolve=True)})
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    trainer = instantiate(cfg.trainer, logger=loggers, callbacks=callbacks, default_root_dir=run_dir)
    trainer.fit(module, datamodule=datamodule)
    best = trainer.checkpoint_callback
    trainer.test(module, datamodule=datamodule, ckpt_path="best" if best and best.best_model_path else None)
    return float(best.best_model_score) if best and best.best_model_score is not None else None


if __name__ == "__main__":
    main()
