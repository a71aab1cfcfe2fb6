"""Recompute a finished run's test metrics, test/nll by importance sampling included:

    python -m vaelab.evaluate RUN_DIR_OR_CKPT [--samples 5000] [--chunk 100]

The model is rebuilt from the run's saved config.yaml and its checkpoint (RUN_DIR: best.ckpt, else last.ckpt).
"""

import argparse
import json
import sys
from pathlib import Path

import lightning.pytorch as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import OmegaConf

from vaelab.build import build
from vaelab.checkpoint import load_checkpoint
from vaelab.errors import ConfigError, said
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


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one-line refusals (ConfigError) rather than usage lines and sys.exit."""

    def error(self, message):
        raise ConfigError(f"{message}; usage: {' '.join(self.format_usage().split()[1:])}")


def count(text: str) -> int:
    """A positive integer, as a flag's value."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not accepted: a positive integer")
    return int(text)


def batches(text: str) -> int | float:
    """As Lightning's limit_test_batches: a positive count, or a fraction in (0, 1] with a decimal point."""
    try:
        value = float(text) if "." in text else int(text)
    except ValueError:
        value = 0
    if not 0 < value or (isinstance(value, float) and value > 1):
        raise argparse.ArgumentTypeError(f"{text!r} is not accepted: a positive number of batches, or a fraction in (0, 1] "
                                         "with a decimal point")
    return value


def parser() -> Parser:
    """The command's flags."""
    command = Parser(prog="python -m vaelab.evaluate", description=__doc__.splitlines()[0])
    command.add_argument("run", help="run directory or checkpoint")
    command.add_argument("--samples", type=count, default=1000, help="importance samples per datum (k)")
    command.add_argument("--chunk", type=count, default=100, help="samples drawn at once")
    command.add_argument("--limit-test-batches", type=batches, default=None,
                         help="as Lightning's limit_test_batches: a count, or a fraction with a decimal point")
    command.add_argument("--accelerator", default="auto")
    command.add_argument("--trust-target", action="append", default=[], metavar="TARGET",
                         help="a _target_ outside vaelab's own configs that the run's config.yaml may name (repeatable)")
    return command


def evaluate(args: argparse.Namespace) -> dict:
    """The run's test metrics, as the command's parsed flags ask; raises ConfigError on bad input, the flags' before
    the run is read."""
    try:
        trainer = L.Trainer(accelerator=args.accelerator, devices=1, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, limit_test_batches=args.limit_test_batches)
    except (MisconfigurationException, ValueError, ImportError) as e:   # one this machine lacks, or Lightning knows not
        raise ConfigError(f"--accelerator={args.accelerator!r} is not accepted: Lightning refuses it: {said(e)}") from None
    module, datamodule, _ = load_run(args.run, args.trust_target, nll_samples=args.samples, nll_chunk=args.chunk)
    (results,) = trainer.test(module, datamodule=datamodule, verbose=False)
    return {"run": str(args.run), "nll_samples": args.samples, **results}


def main(argv=None) -> int:
    """The command: the results as JSON on stdout and status 0, or a one-line refusal on stderr and status 2."""
    try:
        results = evaluate(parser().parse_args(argv))
    except ConfigError as e:
        print(f"vaelab: {e}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
