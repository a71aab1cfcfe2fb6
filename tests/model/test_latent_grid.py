"""Every latent the configs can compose, `latent.kinds` x `latent.widths` (one or two layers of each kind) x
`loss=`, either trains (a step, posterior health, collapse signs, test/nll and the figures) or is refused before
work by a one-line message that names the real cause: a layer kind the estimator does not support, a closed-form
KL that several layers lack, or an estimator with no multi-layer form. The training loop itself (Lightning, with
the figures and the collapse check) runs for a few combinations here and for every accepted one under --runslow."""

import itertools
import math
import warnings
from functools import cache

import lightning.pytorch as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from tests.conftest import ROOT
from vaelab.build import check_estimator
from vaelab.callbacks.collapse import CollapseCheck
from vaelab.callbacks.figures import Figures
from vaelab.errors import ConfigError
from vaelab.likelihoods import Bernoulli
from vaelab.metrics.collapse import max_entropy, signs
from vaelab.metrics.health import posterior_health
from vaelab.metrics.likelihood import log_likelihood
from vaelab.model import VAE
from vaelab.module import VAEModule

LOSSES = sorted(p.stem for p in (ROOT / "vaelab" / "conf" / "loss").glob("*.yaml"))
KINDS = ("binary", "discrete", "continuous")
LAYOUTS = [(k,) for k in KINDS] + list(itertools.product(KINDS, repeat=2))
GRID = [(loss, kinds) for loss in LOSSES for kinds in LAYOUTS]
WIDTH, CLASSES = 2, 3
IMAGE = (4, 4)


def case_id(loss, kinds):
    return f"{loss}-{'+'.join(kinds)}"


@cache
def loss_config(loss):
    """The composed config of `loss=LOSS latent=binary2_linear`, once a loss."""
    with initialize_config_dir(str(ROOT / "vaelab" / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"loss={loss}", "latent=binary2_linear", f"latent.classes={CLASSES}",
                                           "latent.hidden=[3]"])


def composed(loss, kinds):
    """(latent, objective, S) as train.py builds them for `loss=LOSS latent.kinds=[...] latent.widths=[...]`."""
    cfg = loss_config(loss)
    latent = OmegaConf.merge(cfg.latent, {"kinds": list(kinds), "widths": [WIDTH] * len(kinds)})
    return instantiate(latent), instantiate(cfg.loss), cfg.S


def accepted(loss, kinds):
    """(latent, objective, S) of a combination that build() accepts; None where it refuses."""
    latent, objective, S = composed(loss, kinds)
    try:
        check_estimator(loss, objective, latent.kinds, S, latent.depth)
    except ConfigError:
        return None
    return latent, objective, S


def tiny_vae(latent):
    torch.manual_seed(0)
    return VAE(latent, Bernoulli(), IMAGE, hidden=(6,))


X = torch.bernoulli(torch.full((5, *IMAGE), 0.5), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("loss,kinds", GRID, ids=[case_id(*c) for c in GRID])
def test_every_composed_latent_trains_or_is_refused_naming_the_real_cause(loss, kinds):
    latent, objective, S = composed(loss, kinds)
    try:
        check_estimator(loss, objective, latent.kinds, S, latent.depth)
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message
        causes = [f"latent={k} is not supported" for k in set(kinds) if k not in objective.latents]
        if latent.depth > 1 and getattr(objective, "analytic_kl", None):
            causes.append("loss.analytic_kl=false trains them")
        if latent.depth > 1 and not objective.hierarchical:
            causes.append(f"L={latent.depth} stochastic layers are not supported")
        causes += [p for p in objective.problems(kinds[0], S, latent.depth) if "S=" in p]
        assert causes and all(c in message for c in causes), (causes, message)
        return
    vae = tiny_vae(latent)
    estimate = objective(vae, X, S)
    estimate.loss.backward()
    assert torch.isfinite(estimate.loss) and estimate.elbo.shape == (len(X),)
    assert all(torch.isfinite(p.grad).all() for p in vae.parameters() if p.grad is not None)
    health = posterior_health(vae, X)
    assert all(torch.isfinite(v) for v in health.values())
    assert ("entropy" in health) == any(k != "continuous" for k in kinds)
    signs({f"test/{k}": v for k, v in health.items()}, latent, "test")
    assert torch.isfinite(log_likelihood(vae, X, 4, 2)).all()


def test_a_mix_is_no_single_kind_and_its_entropy_bound_averages_its_variables():
    latent, _, _ = composed("reinforce", ("discrete", "binary"))
    assert latent.kind == "mixed" and latent.kinds == ("discrete", "binary")
    assert max_entropy(latent) == pytest.approx((math.log(CLASSES) + math.log(2)) / 2)
    assert max_entropy(composed("reinforce", ("continuous", "continuous"))[0]) is None


def test_one_layer_is_that_layer_s_latent():
    from vaelab.latents import Binary

    latent, _, _ = composed("disarm", ("binary",))
    q, plain = latent.posterior(torch.zeros(2, WIDTH)), Binary(WIDTH).posterior(torch.zeros(2, WIDTH))
    assert type(q) is type(plain) and q.event_shape == plain.event_shape and latent.support().shape == (4, WIDTH)


class Tiny(L.LightningDataModule):
    """12 random 4 x 4 binary images, for training, validation and test alike."""

    event_shape = IMAGE

    def train_dataloader(self):
        return DataLoader(torch.cat([X, X.flip(0), X.flip(1)])[:12], batch_size=4)

    val_dataloader = test_dataloader = train_dataloader


def trains_through_test_and_figures(latent, objective, S, tmp_path):
    """Fit one short epoch, validate, test and draw the figures, as a run does; returns the test metrics."""
    module = VAEModule(tiny_vae(latent), objective, S=S, nll_samples=4, nll_chunk=2)
    collapse = CollapseCheck()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=[Figures(tmp_path, every_n_epochs=1000, n=2, manifold_n=2), collapse])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and tiny batches
        trainer.fit(module, datamodule=Tiny())
        trainer.test(module, datamodule=Tiny(), verbose=False)
    assert (tmp_path / "reconstructions.png").exists() and (tmp_path / "prior_samples.png").exists()
    return trainer.callback_metrics


SHOWN = [("reinforce", ("binary", "continuous")), ("gumbel", ("discrete", "binary")), ("disarm", ("binary",)),
         ("elbo", ("continuous",))]


@pytest.mark.parametrize("loss,kinds", SHOWN, ids=[case_id(*c) for c in SHOWN])
def test_the_layouts_that_crashed_train_through_test_and_figures(loss, kinds, tmp_path):
    metrics = trains_through_test_and_figures(*accepted(loss, kinds), tmp_path)
    assert math.isfinite(metrics["test/elbo"]) and "test/collapsed" in metrics


@pytest.mark.slow
@pytest.mark.parametrize("loss,kinds", GRID, ids=[case_id(*c) for c in GRID])
def test_every_accepted_combination_trains_through_test_and_figures(loss, kinds, tmp_path):
    found = accepted(loss, kinds)
    if found is None:
        pytest.skip("refused before work (the test above checks the message)")
    assert math.isfinite(trains_through_test_and_figures(*found, tmp_path)["test/elbo"])
