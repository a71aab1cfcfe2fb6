"""The DisARM benchmark protocol's options (issue 26): threshold binarisation, the code's splits, input centring,
the data-set output bias, the prior's own optimiser and the evaluation on a step schedule."""

import math

import lightning.pytorch as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from vaelab.callbacks.bounds import Bounds
from vaelab.data import Digits
from vaelab.data.base import split_off
from vaelab.errors import ConfigError
from vaelab.latents import Binary, Gaussian
from vaelab.likelihoods import Bernoulli
from vaelab.likelihoods import Gaussian as GaussianLikelihood
from vaelab.metrics.likelihood import log_likelihood
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.objectives import DisARM

MEANS = torch.tensor([0.0, 0.25, 0.5, 1.0])


def digits(**options):
    data = Digits(batch_size=50, val_size=100, test_size=100, **options)
    data.setup()
    return data


def test_threshold_binarisation_sets_each_split_to_pixels_above_a_half_and_draws_nothing():
    gray, thresholded = digits(binarize="none"), digits(binarize="threshold")
    for split in ("train", "val", "test"):
        assert torch.equal(thresholded.splits[split], (gray.splits[split] > 0.5).float())
    assert thresholded.support == "binary" and thresholded.likelihood == "bernoulli"
    batch = thresholded.splits["train"][:5]
    assert thresholded.on_after_batch_transfer(batch, 0) is batch   # no training-time draw


def test_val_split_first_and_last_take_rows_in_file_order_and_random_by_seed():
    x = torch.arange(10)
    assert [t.tolist() for t in split_off(x, 3, "last", 0)] == [list(range(7)), [7, 8, 9]]
    assert [t.tolist() for t in split_off(x, 3, "first", 0)] == [list(range(3, 10)), [0, 1, 2]]
    train, val = split_off(x, 3, "random", 0)
    assert sorted([*train.tolist(), *val.tolist()]) == list(range(10)) and val.tolist() != [7, 8, 9]


def test_pixel_means_are_the_training_pixels_expectations():
    gray = digits(binarize="none")
    assert torch.equal(digits(binarize="dynamic").pixel_means(), gray.splits["train"].mean(0))
    assert digits(binarize="threshold").pixel_means().eq(0).any()   # thresholded, not gray, means


def test_output_bias_is_the_logit_of_the_clipped_pixel_means():
    vae = VAE(Binary(3), Bernoulli(), (4,), hidden=(), bias_from_data=True, pixel_means=MEANS)
    expected = torch.tensor([math.log(0.001 / 0.999), math.log(0.25 / 0.75), 0.0, math.log(0.999 / 0.001)])
    torch.testing.assert_close(vae.decoder[-1].bias.detach(), expected)


@pytest.mark.parametrize("centre,encoder_input", [("none", lambda x: x), ("mean", lambda x: x - MEANS),
                                                  ("sign", lambda x: 2 * x - 1)])
def test_centring_shifts_the_encoder_input_and_maps_the_decoder_input_to_plus_minus_one(centre, encoder_input):
    torch.manual_seed(0)
    vae = VAE(Binary(3), Bernoulli(), (4,), hidden=(), centre=centre, pixel_means=MEANS)
    x, z = torch.rand(5, 4), torch.randint(0, 2, (5, 3)).float()
    W, b, V, c = vae.encoder[0].weight, vae.encoder[0].bias, vae.decoder[0].weight, vae.decoder[0].bias
    torch.testing.assert_close(vae.posterior(x).base_dist.logits, encoder_input(x) @ W.T + b)
    torch.testing.assert_close(vae.decode(z), (z if centre == "none" else 2 * z - 1) @ V.T + c)


@pytest.mark.parametrize("options,key", [
    ({"centre": "yes"}, "net.centre"), ({"centre": True}, "net.centre"),
    ({"centre": "mean", "latent": Gaussian(3)}, "net.centre"),
    ({"bias_from_data": "true"}, "net.bias_from_data"),
    ({"bias_from_data": True, "likelihood": GaussianLikelihood()}, "net.bias_from_data"),
])
def test_bad_centring_and_bias_options_are_refused_naming_the_key(options, key):
    latent, likelihood = options.pop("latent", Binary(3)), options.pop("likelihood", Bernoulli())
    with pytest.raises(ConfigError, match=key):
        VAE(latent, likelihood, (4,), hidden=(), pixel_means=MEANS, **options)


def module(learn_prior=True, **options):
    torch.manual_seed(0)
    vae = VAE(Binary(4, learn_prior=learn_prior), Bernoulli(), (8, 8), hidden=())
    return VAEModule(vae, DisARM(), S=2, lr=1e-3, nll_samples=0, **options)


def trainer(tmp_path, steps, **options):
    return L.Trainer(max_steps=steps, logger=CSVLogger(tmp_path, name="", version=""),
                     enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                     accelerator="cpu", **options)


def test_the_prior_moves_by_sgd_on_its_own_gradient_alone_and_the_optimiser_leaves_it(tmp_path):
    sgd = torch.optim.SGD
    model = module(prior_optimizer=lambda params: sgd(params, lr=1e-2))
    prior = model.vae.latent.prior_logits
    adam = model.configure_optimizers()
    assert all(p is not prior for group in adam.param_groups for p in group["params"])
    assert len([p for group in adam.param_groups for p in group["params"]]) == len(list(model.parameters())) - 1
    start, grads = prior.detach().clone(), []
    prior.register_hook(lambda g: grads.append(g.clone()))
    trainer(tmp_path, 3, limit_val_batches=0).fit(model, datamodule=digits())
    assert len(grads) == 3 and not torch.equal(grads[0], grads[1])
    expected = start
    for g in grads:   # each step's own gradient: none left over from the step before
        expected = expected - 1e-2 * g
    torch.testing.assert_close(prior.detach(), expected, rtol=0, atol=1e-6)


def test_a_prior_optimizer_without_a_learned_prior_is_refused():
    with pytest.raises(ConfigError, match="prior_optimizer"):
        module(learn_prior=False, prior_optimizer=lambda params: torch.optim.SGD(params, lr=1e-2))


def test_bounds_are_logged_at_each_validation_of_the_step_schedule_over_whole_splits(tmp_path):
    model, data = module(), digits()
    trainer(tmp_path, 6, val_check_interval=3, check_val_every_n_epoch=None,
            callbacks=[Bounds(samples=4, batch_size=40)]).fit(model, datamodule=data)
    rows = pd.read_csv(tmp_path / "metrics.csv").dropna(subset=["eval/test_bound"])
    assert rows["step"].tolist() == [2, 5]
    with torch.no_grad():
        bound = torch.cat([log_likelihood(model.vae, x, 4, 4, seed=i) for i, x in enumerate(data.splits["test"].split(40))])
    assert rows["eval/test_bound"].iloc[-1] == pytest.approx(bound.mean().item(), rel=1e-5)
    assert rows["eval/train_elbo"].notna().all()


@pytest.mark.parametrize("key,value", [("samples", 0), ("batch_size", 0), ("samples", 1.5)])
def test_bad_bounds_options_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"callbacks.bounds.{key}"):
        Bounds(**{key: value})


def test_linear_nets_stay_linear():
    assert [type(m) for m in VAE(Binary(3), Bernoulli(), (4,), hidden=(), centre="mean", pixel_means=MEANS).encoder] \
        == [nn.Linear]


@pytest.mark.parametrize("dataset,val_size", [("mnist", 10000), ("fashion_mnist", 10000), ("omniglot", 1345)])
def test_the_dong2020_experiments_split_each_data_set_as_the_disarm_code(dataset, val_size):
    from tests.runs.test_experiments import composed

    for experiment in ("dong2020_linear", "dong2020_nonlinear"):
        cfg = composed(f"experiment={experiment}", f"dataset={dataset}")
        assert (cfg.dataset.val_size, cfg.dataset.val_split, cfg.dataset.batch_size) == (val_size, "last", 50)
    assert composed(f"dataset={dataset}").dataset.val_split == "random"


@pytest.mark.parametrize("overrides,match", [
    (["trainer.gradient_clip_val=1.0"], "trainer.gradient_clip_val=1.0 is not accepted"),
    (["dataset=omniglot"], "chardata.mat"),
])
def test_the_protocol_refuses_what_cannot_work_before_it_loads_data(tmp_path, overrides, match):
    from tests.runs.test_experiments import composed
    from vaelab.build import build

    cfg = composed("experiment=dong2020_linear", f"data_dir={tmp_path}", *overrides)
    with pytest.raises(ConfigError, match=match):
        build(cfg, dict(cfg.hydra.runtime.choices))
