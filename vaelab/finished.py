"""A finished run rebuilt from its folder: its module, with the checkpoint's weights, and its data, by the same `build`
as training. `python -m vaelab.evaluate` scores it; the report's manifold figure draws it."""

from pathlib import Path

from omegaconf import OmegaConf

from vaelab.build import build
from vaelab.checkpoint import load_checkpoint
from vaelab.errors import ConfigError
from vaelab.trust import saved_config


def locate(path):
    """(run directory, checkpoint) for a run directory or a checkpoint inside one (RUN/checkpoints/X.ckpt)."""
    path = Path(path)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        raise ConfigError(f"run={str(path)!r} is not accepted: that is a config file; give the run directory that "
                          f"holds it ({path.parent}) or one of its checkpoints")
    if path.is_file():
        return path.parent.parent, path
    found = [c for c in (path / "checkpoints" / "best.ckpt", path / "checkpoints" / "last.ckpt") if c.exists()]
    if not found or not (path / "config.yaml").exists():
        raise ConfigError(f"run={str(path)!r} is not accepted: a run directory with config.yaml and "
                          "checkpoints/best.ckpt or last.ckpt, or a checkpoint file in one")
    return path, found[0]


def run_choices(run_dir, cfg) -> dict:
    """The run's config-group choices, from Hydra's record of it (or, without one, the loss's class name)."""
    hydra_yaml = Path(run_dir) / ".hydra" / "hydra.yaml"
    if hydra_yaml.exists():
        return dict(OmegaConf.load(hydra_yaml).hydra.runtime.choices)
    return {"loss": cfg.loss._target_.rsplit(".", 1)[-1], "latent": cfg.latent._target_.rsplit(".", 1)[-1],
            "dataset": cfg.dataset._target_.rsplit(".", 1)[-1]}


def load_run(path, trusted=(), **overrides):
    """(module with the checkpoint's weights, data module, config) of a run, rebuilt by the run's own `build`;
    `overrides` replace top-level keys of its config (e.g. nll_samples). Built uncompiled: a compiled run's
    checkpoint holds the same parameter names. Its config names only vaelab's own targets and `trusted` ones."""
    run_dir, checkpoint = locate(path)
    saved = saved_config(run_dir, "run", path, trusted, "if you trust it, add --trust-target TARGET")
    state = load_checkpoint(checkpoint, "run", "evaluate another checkpoint of the run (best.ckpt or last.ckpt)")
    cfg = OmegaConf.merge(saved, {"compile": False}, overrides)
    module, datamodule = build(cfg, run_choices(run_dir, cfg))
    try:
        module.load_state_dict(state["state_dict"])
    except RuntimeError as e:   # missing, unexpected or differently shaped weights
        raise ConfigError(f"run={str(path)!r} is not accepted: its checkpoint is of another architecture than the "
                          f"run's config.yaml builds ({str(e).splitlines()[1].strip()[:200]})") from None
    return module, datamodule, cfg


def run_name(path, cfg):
    """The run's estimator as chosen on the command line and its S."""
    return f"{run_choices(locate(path)[0], cfg)['loss']} (S={cfg.S})"
