"""Train one VAE: `python train.py loss=variance latent=discrete` (add -m for a sweep)."""

import sys
from pathlib import Path

import hydra
import lightning.pytorch as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import OverrideParseException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vaelab.errors import ConfigError, refusal
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.preflight import check_budget, check_choices, check_data
from vaelab.resume import CHECKPOINT, saved_run
from vaelab.status import discard, recorded

CONF = Path(__file__).parent / "conf"
OmegaConf.register_new_resolver("isatty", lambda: sys.stdout.isatty(), replace=True)
OmegaConf.register_new_resolver("if_resume", lambda resume, then, fresh: fresh if resume is None else then, replace=True)


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


def build(cfg, choices):
    """Everything a run needs, built from config; cheap parts first so bad values fail before data loads."""
    check_budget(cfg.trainer)
    latent, objective = instantiate(cfg.latent), instantiate(cfg.loss)
    check_estimator(choices["loss"], objective, latent.kind, cfg.S)
    module_args = dict(S=cfg.S, lr=cfg.lr, eval_samples=cfg.eval_samples)
    datamodule = instantiate(cfg.dataset)
    check_data(datamodule)
    vae = VAE(latent, instantiate(cfg.likelihood), datamodule.event_shape, **instantiate(cfg.net))
    return VAEModule(vae, objective, **module_args), datamodule


def flat_keys(cfg, choices):
    return {"loss": choices["loss"], "latent": choices["latent"], "dataset": choices["dataset"],
            "S": cfg.S, "seed": cfg.seed}


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig):
    hydra_cfg = HydraConfig.get()
    resume, choices = cfg.resume, hydra_cfg.runtime.choices
    alone = hydra_cfg.mode == RunMode.RUN  # in a sweep, a failed job raises: Hydra records it and runs the others
    run_dir = Path(resume or hydra_cfg.runtime.output_dir).absolute()
    try:
        if resume:
            cfg, choices = saved_run(run_dir, list(hydra_cfg.overrides.task))
        L.seed_everything(cfg.seed, workers=True)
        module, datamodule = build(cfg, choices)
        callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    except Exception as e:
        if refusal(e) is None:
            raise
        discard(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir, f"{hydra_cfg.job.name}.log")
        if not alone:
            raise refusal(e) from None
        print(f"vaelab: {refusal(e)}", file=sys.stderr)
        sys.exit(2)
    with recorded(run_dir, exit=alone) as status:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        loggers = [instantiate(c) for c in cfg.logger.values()]
        for logger in loggers:
            logger.log_hyperparams({**flat_keys(cfg, choices), "config": OmegaConf.to_container(cfg, resolve=True)})
        trainer = instantiate(cfg.trainer, logger=loggers, callbacks=[*callbacks, status], default_root_dir=run_dir)
        trainer.fit(module, datamodule=datamodule, ckpt_path=run_dir / CHECKPOINT if resume else None)
        best = trainer.checkpoint_callback
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if best and best.best_model_path else None)
    return float(best.best_model_score) if best and best.best_model_score is not None else None


def command_line_choices(args):
    """(group, option) for each config-group option named on the command line, sweeps expanded."""
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if "=" in a and not a.startswith("-")])
    except OverrideParseException:
        return  # Hydra reports bad syntax itself
    for o in overrides:
        if (CONF / o.key_or_group).is_dir() and not o.key_or_group.startswith("hydra") and not o.is_delete():
            if o.value_type == ValueType.GLOB_CHOICE_SWEEP:
                continue  # a glob picks existing options
            values = o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()]
            yield from ((o.key_or_group, v) for v in values if v != "null")


if __name__ == "__main__":
    try:
        check_choices(CONF, command_line_choices(sys.argv[1:]))
    except ConfigError as e:
        sys.exit(print(f"vaelab: {e}", file=sys.stderr) or 2)
    main()
