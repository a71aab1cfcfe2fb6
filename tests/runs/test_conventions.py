"""lightning-hydra-template's conventions compose: debug configs, tags, the paths group, logger=many_loggers."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from tests.conftest import ROOT
from vaelab.resolvers import register_resolvers


def composed(*overrides):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.mark.parametrize("debug,trainer", [
    ("fast_dev_run", {"fast_dev_run": True}),
    ("overfit", {"overfit_batches": 3, "max_epochs": 30}),
    ("limit", {"max_epochs": 3, "limit_train_batches": 10, "limit_val_batches": 2, "limit_test_batches": 2}),
    ("profiler", {"profiler": "simple", "max_epochs": 1}),
])
def test_debug_configs_set_the_trainer_and_tag_the_run(debug, trainer):
    cfg = composed(f"debug={debug}")
    assert {k: cfg.trainer[k] for k in trainer} == trainer
    assert list(cfg.tags) == ["debug"] and cfg.nll_samples == 10


def test_command_line_wins_over_a_debug_config():
    assert composed("debug=limit", "trainer.max_epochs=7").trainer.max_epochs == 7


def test_many_loggers_is_csv_tensorboard_and_wandb_with_the_tags():
    cfg = composed("logger=many_loggers", "tags=[baseline,mnist]")
    assert set(cfg.logger) == {"csv", "tensorboard", "wandb"}
    assert OmegaConf.to_container(cfg.logger.wandb.tags, resolve=True) == ["baseline", "mnist"]


def test_paths_set_the_data_and_output_roots():
    cfg = composed("paths.output_dir=/scratch/runs", "paths.sweep_dir=/scratch/sweeps", "paths.data_dir=/data")
    assert cfg.hydra.run.dir.startswith("/scratch/runs/") and cfg.hydra.sweep.dir.startswith("/scratch/sweeps/")
    assert cfg.data_dir == "/data" and composed().data_dir is None
