"""Every published setup in vaelab/conf/experiment/ composes, builds what it names, and trains two steps in process,
so that no experiment config can rot; the optimiser and scheduler groups reach the optimiser."""

import math
import re

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import open_dict

from tests.conftest import ROOT
from vaelab.resolvers import register_resolvers

EXPERIMENTS = sorted(p.stem for p in (ROOT / "vaelab" / "conf" / "experiment").glob("*.yaml"))
TWO_STEPS = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.val_check_interval=2",
             "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "nll_samples=10",
             "trainer.enable_progress_bar=false", "callbacks.figures.every_n_epochs=1000"]
register_resolvers()


def composed(*overrides, output_dir=None):
    with initialize_config_dir(config_dir=str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        extra = [f"hydra.runtime.output_dir={output_dir}"] if output_dir else []
        return compose("train", overrides=[*overrides, *extra], return_hydra_config=True)


ISSUE_21 = ["stojanovic_fig5", "kingma2014", "kingma2014_frey", "burda2015", "jang2017", "yin2019_linear",
            "yin2019_nonlinear"]


def test_the_issue_s_setups_are_all_there():
    assert set(ISSUE_21) <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_is_global_cites_its_paper_and_says_its_cpu_budget(name):
    text = (ROOT / "vaelab" / "conf" / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert re.search(r"\b(19|20)\d\d\b", text)
    assert re.search(r"trainer\.max_epochs=\d+ [^\n]*\(CPU budget", text)


@pytest.mark.parametrize("name", ISSUE_21)
def test_the_issue_s_setups_name_the_table_or_figure_they_target(name):
    assert re.search(r"(Table|Figure|Fig\.) \d", (ROOT / "vaelab" / "conf" / "experiment" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_into_what_it_names(name):
    cfg = composed(f"experiment={name}")
    assert cfg.hydra.runtime.choices.experiment == name
    objective, latent = instantiate(cfg.loss), instantiate(cfg.latent)
    assert not objective.problems(latent.kind, cfg.S)
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = instantiate(cfg.optimizer)(params)
    assert optimizer.defaults["lr"] == cfg.lr
    if cfg.get("scheduler"):
        instantiate(cfg.scheduler)(optimizer)


@pytest.mark.requires_data
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_trains_two_steps_in_process(name, tmp_path):
    from vaelab.run import BEST, train

    cfg = composed(f"experiment={name}", *TWO_STEPS, output_dir=tmp_path)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    metrics, _ = train(cfg)
    assert math.isfinite(metrics[BEST])
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_burda_schedule_is_three_to_the_i_epochs_at_a_tenth_every_seven_stages():
    cfg = composed("experiment=burda2015")
    optimizer = instantiate(cfg.optimizer)([torch.nn.Parameter(torch.zeros(1))])
    schedule = instantiate(cfg.scheduler)(optimizer)
    rates = []
    for _ in range(cfg.trainer.max_epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    stages = [sum(3**j for j in range(i)) for i in range(9)]   # stage i: epochs [stages[i], stages[i+1])
    assert len(rates) == stages[-1] == 3280
    for i in range(8):
        assert rates[stages[i]:stages[i + 1]] == pytest.approx([1e-3 * 10 ** (-i / 7)] * 3**i)
    assert optimizer.defaults["eps"] == 1e-4 and optimizer.defaults["betas"] == (0.9, 0.999)


def test_adam_is_fused_unless_the_config_says_otherwise():
    from vaelab.build import build

    for overrides, fused in (([], True), (["+optimizer.fused=false"], False)):
        cfg = composed("dataset=digits", "net.hidden=[8]", *overrides)
        module, _ = build(cfg, dict(cfg.hydra.runtime.choices))
        optimizer = module.configure_optimizers()
        assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["fused"] is fused
        assert optimizer.defaults["lr"] == cfg.lr


def test_linear_and_leaky_relu_nets():
    cfg = composed("dataset=digits", "net.hidden=[]", "net/activation=leaky_relu", "net.activation.negative_slope=0.2")
    from vaelab.build import build

    vae = build(cfg, dict(cfg.hydra.runtime.choices))[0].vae
    assert [type(m) for m in vae.encoder] == [torch.nn.Linear] and [type(m) for m in vae.decoder] == [torch.nn.Linear]
    cfg = composed("dataset=digits", "net.hidden=[8]", "net/activation=leaky_relu", "net.activation.negative_slope=0.2")
    encoder = build(cfg, dict(cfg.hydra.runtime.choices))[0].vae.encoder
    assert isinstance(encoder[1], torch.nn.LeakyReLU) and encoder[1].negative_slope == 0.2


def test_fig5_trains_the_four_panels_and_writes_them_side_by_side(tmp_path):
    """`python sweep.py fig5`, cut to two steps on digits: elbo, reinforce, variance, vargrad, in that order."""
    from PIL import Image

    from tests.runs.test_sweeps import python
    from vaelab.reporting.style import DPI, PAGE

    python("sweep.py", "fig5", "--dir", str(tmp_path / "fig5"), "dataset=digits", "trainer.max_epochs=1",
           "trainer.limit_train_batches=2", "nll_samples=0", cwd=tmp_path)
    figure = Image.open(tmp_path / "fig5" / "stojanovic_fig5.png")
    panel = PAGE / 4     # four panels, a page wide in all, with 0.4 inch of titles, at the figures' dpi
    assert figure.size == (round(4 * panel * DPI), round((panel + 0.4) * DPI))
    assert sorted(p.name.split("loss=")[1].split(",")[0] for p in (tmp_path / "fig5").glob("S=8,*")) == \
        ["elbo", "reinforce", "vargrad", "variance"]
