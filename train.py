"""Train one VAE: `python train.py loss=variance latent=discrete` (add -m for a sweep)."""

import logging
import sys
from pathlib import Path

import hydra
import lightning.pytorch as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.errors import OverrideParseException
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from vaelab.callbacks import configured
from vaelab.errors import ConfigError, refusal, require
from vaelab.likelihoods import check_fit
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.preflight import check_budget, check_choices, check_data
from vaelab.resume import CHECKPOINT, saved_run
from vaelab.status import discard, read_status, recorded, status_of, write_status

CONF = Path(__file__).parent / "conf"
log = logging.getLogger("vaelab")
OmegaConf.register_new_resolver("isatty", lambda: sys.stdout.isatty(), replace=True)
OmegaConf.register_new_resolver("if_resume", lambda resume, then, fresh: fresh if resume is None else then, replace=True)


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


def build(cfg, choices):
    """Everything a run needs, built from config; cheap parts first so bad values fail before data loads."""
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


def flat_keys(cfg, choices):
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
    """One run; returns its best val/elbo (what a sweeper maximises).

    A refused configuration stops a single run with exit status 2 and leaves no run folder; a sweep's job
    records it as skipped and the sweep goes on, as it does past a failed job (status.json says which).
    With skip_finished=true a run already done is not redone.
    """
    hydra_cfg = HydraConfig.get()
    resume, choices = cfg.resume, hydra_cfg.runtime.choices
    run_dir = Path(resume or hydra_cfg.runtime.output_dir).absolute()
    if cfg.skip_finished and status_of(run_dir) == "done":
        log.info("%s is done already (skip_finished=true)", run_dir)
        return read_status(run_dir)["result"]
    if multirun():
        spread_over_gpus(cfg, hydra_cfg.job.num)
    try:
        if resume:
            cfg, choices = saved_run(run_dir, list(hydra_cfg.overrides.task))
        L.seed_everything(cfg.seed, workers=True)
        module, datamodule = build(cfg, choices)
        callbacks = [instantiate(c) for c in configured(cfg.callbacks, cfg.trainer)]
    except Exception as e:
        if refusal(e) is None:
            raise
        if multirun():
            write_status(run_dir, "skipped", str(refusal(e)))
            log.warning("skipped %s: %s", run_dir, refusal(e))
            return float("-inf")
        discard(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir, f"{hydra_cfg.job.name}.log")
        print(f"vaelab: {refusal(e)}", file=sys.stderr)
        sys.exit(2)
    with recorded(run_dir, exit=not multirun()) as status:
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
        loggers = [instantiate(c) for c in cfg.logger.values()]
        for logger in loggers:
            logger.log_hyperparams({**flat_keys(cfg, choices), "config": OmegaConf.to_container(cfg, resolve=True)})
        trainer = instantiate(cfg.trainer, logger=loggers, callbacks=[*callbacks, status], default_root_dir=run_dir)
        trainer.fit(module, datamodule=datamodule, ckpt_path=run_dir / CHECKPOINT if resume else None)
        best = trainer.checkpoint_callback
        trainer.test(module, datamodule=datamodule, ckpt_path="best" if best and best.best_model_path else None)
        status.result = float(best.best_model_score) if best and best.best_model_score is not None else None
    return status.result if status_of(run_dir) == "done" else float("-inf")  # the worst, to a maximising sweeper


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
            values = o.sweep_iterator() if o.is_sweep_override() else [o.value()]
            for value in values:  # a value is an option, or a list of them (logger=[csv,wandb])
                yield from ((o.key_or_group, str(v)) for v in (value if isinstance(value, list) else [value])
                            if v is not None and str(v) != "null")


if __name__ == "__main__":
    try:
        check_choices(CONF, command_line_choices(sys.argv[1:]))
    except ConfigError as e:
        sys.exit(print(f"vaelab: {e}", file=sys.stderr) or 2)
    main()
