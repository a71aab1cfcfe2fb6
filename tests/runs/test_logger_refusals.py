"""W&B's settings are checked before any work: tags of the wrong type and a WANDB_MODE that W&B does not accept
are refused in one line, exit status 2, no run folder; W&B's own modes pass."""

import typing

import pytest
import wandb

from tests.runs.test_refusals import assert_refused, train_here  # noqa: F401 - the fixture
from vaelab.errors import ConfigError
from vaelab.loggers import ResumableWandbLogger
from vaelab.schema import check_targets

MODES = typing.get_args(wandb.Settings.model_fields["mode"].annotation)
REFUSED = [
    (["logger.wandb.tags=foo"], "logger.wandb.tags='foo' is not accepted: a list, each item a string, or null"),
    (["logger.wandb.tags=5"], "logger.wandb.tags=5 is not accepted: a list, each item a string, or null"),
]


@pytest.mark.parametrize("overrides,line", REFUSED, ids=[" ".join(o) for o, _ in REFUSED])
def test_wandb_tags_of_the_wrong_type_are_refused_before_work(train_here, overrides, line):  # noqa: F811
    assert_refused(train_here("logger=wandb", *overrides), train_here.dir, line)


def test_a_wandb_mode_that_wandb_refuses_is_refused_before_work(train_here, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WANDB_MODE", "offlin")
    assert_refused(train_here("logger=many_loggers"), train_here.dir, "WANDB_MODE='offlin' is not accepted: one of "
                   f"{', '.join(MODES)} (the environment variable sets W&B's mode)")


@pytest.mark.parametrize("mode", [*MODES, None])
def test_each_mode_wandb_accepts_passes(monkeypatch, mode):
    if mode is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", mode)
    check_targets({"wandb": {"_target_": "vaelab.loggers.ResumableWandbLogger", "id_file": "x", "tags": ["a", "b"]}},
                  "logger")
    assert "offline" in MODES and "disabled" in MODES


def test_the_mode_is_checked_by_wandb_itself(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "ONLINE")   # W&B's modes are lower case
    with pytest.raises(ConfigError, match="WANDB_MODE='ONLINE' is not accepted"):
        ResumableWandbLogger.preflight()
