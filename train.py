"""Train one VAE: `python train.py loss=variance latent=discrete` (add -m for a sweep)."""

import sys
from pathlib import Path

import hydra
import lightning.pytorch as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vaelab.errors import ConfigError
from vaelab.model import VAE
from vaelab.module import VAEModule

CONF = Path(__file__).parent / "conf"
OmegaConf.register_new_resolver("isatty", lambda: sys.stdout.isatty(), replace=True)


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


def config_error(error):
    """The ConfigError behind `error` (Hydra wraps one raised inside instantiate), or None."""
    while error is not None and not isinstance(error, ConfigError):
        error = error.__cause__
    return error


def build(cfg):
    """Everything a run needs, built from config; cheap parts first so bad values fail before data loads."""
    choices = HydraConfig.get().runtime.choices
    latent, objective = instantiate(cfg.latent), instantiate(cfg.loss)
    check_estimator(choices["loss"], objective, latent.kind, cfg.S)
    module_args = dict(S=cfg.S, lr=cfg.lr, eval_samples=cfg.eval_samples)
    datamodule = instantiate(cfg.dataset)
    vae = VAE(latent, instantiate(cfg.likelihood), datamodule.event_shape, **instantiate(cfg.net))
    return VAEModule(vae, objective, **module_args), datamodule


def flat_keys(cfg):
    choices = HydraConfig.get().runtime.choices
    return {"loss": choices["loss"], "latent": choices["latent"], "dataset": choices["dataset"],
            "S": cfg.S, "seed": cfg.seed}


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig):
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    try:
        module, datamodule = build(cfg)
    except Exception as e:
        if config_error(e) is None:
            raise
        print(f"vaelab: {config_error(e)}", file=sys.stderr)
        sys.exit(2)
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
