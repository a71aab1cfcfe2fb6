"""Every `trainer.precision` Lightning accepts either trains end to end (fit, test, figures) or is refused before
work: the -true settings once failed at the end, drawing figures from a float32 batch through a model in another
dtype."""

import inspect
import json
import math
import typing

import lightning.pytorch as L
import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from tests.runs.test_experiments import TWO_STEPS, composed
from vaelab.errors import ConfigError
from vaelab.preflight import check_trainer

TRAINED = ["64-true", "32-true", "16-mixed", "bf16-mixed", "bf16-true"]
SHOWN = ["bf16-true"]  # the one the figures failed for twice (dtype, then numpy's lack of bfloat16)


def train_with(precision, tmp_path):
    from vaelab.__main__ import main  # in process, through the run's lifecycle: status.json is written

    cfg = composed("dataset=digits", "loss=vargrad", "latent=binary", "latent.D=8", "net.hidden=[8]",
                   f"trainer.precision={precision}", "extras.print_config=false", *TWO_STEPS, output_dir=tmp_path)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return main(cfg)


@pytest.mark.parametrize("precision", [pytest.param(p, marks=[] if p in SHOWN else pytest.mark.slow) for p in TRAINED])
def test_each_precision_trains_through_test_and_figures(precision, tmp_path):
    assert math.isfinite(train_with(precision, tmp_path))
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "done"
    assert (tmp_path / "figures" / "reconstructions.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["16-true", "transformer-engine"])
def test_the_other_precisions_are_refused_before_work(precision, tmp_path):
    with pytest.raises(ConfigError, match=f"trainer.precision='{precision}' is not accepted"):
        train_with(precision, tmp_path)
    assert not (tmp_path / "status.json").exists()


def accepted(annotation) -> list:
    """The values of the Literal types within `annotation` (Lightning's `Trainer(precision=...)` type)."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [value for inner in typing.get_args(annotation) for value in accepted(inner)]


@pytest.mark.parametrize("precision", accepted(inspect.signature(L.Trainer).parameters["precision"].annotation))
def test_every_precision_lightning_accepts_is_one_that_trains_or_is_refused_before_work(precision):
    """Aliases (16, "bf16", 64, ...) included: the Trainer that preflight lets through runs one of the trained ones."""
    node = OmegaConf.create({"_target_": "lightning.pytorch.Trainer", "accelerator": "cpu", "devices": 1,
                             "precision": precision})
    try:
        check_trainer(node)
    except ConfigError as e:
        assert str(e).startswith(f"trainer.precision={precision!r} is not accepted: "), str(e)
        return
    assert L.Trainer(accelerator="cpu", devices=1, precision=precision, logger=False).precision in TRAINED
