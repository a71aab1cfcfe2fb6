"""Recompute a finished run's test metrics, test/nll by importance sampling included:

    python -m vaelab.evaluate RUN_DIR_OR_CKPT [--samples 5000] [--chunk 100]

The model is rebuilt from the run's saved config.yaml and its checkpoint (RUN_DIR: best.ckpt, else last.ckpt).
"""

import argparse
import json
import sys

import lightning.pytorch as L
from lightning.fabric.utilities.exceptions import MisconfigurationException

from vaelab.errors import ConfigError, said
from vaelab.finished import load_run


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
