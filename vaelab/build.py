"""The module and data module of a run, built from its config: what training (`vaelab.run`) and evaluation
(`vaelab.evaluate`) both import, and the estimators' table that refusals name.

    module, datamodule = build(cfg, choices)
"""

from contextlib import nullcontext
from functools import cache

import lightning.pytorch as L
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from vaelab.components import check_components
from vaelab.errors import ConfigError, require
from vaelab.likelihoods import check_fit
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.paths import CONF
from vaelab.preflight import check_budget, check_data
from vaelab.schema import check_kwargs, check_targets, under


def conf_dir():
    """Hydra's compose API on vaelab/conf/: the running app's (train.py, a test's initialize) if there is one."""
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
