"""The hierarchical latent: its distributions against enumeration, the importance-sampled log p(x) over both
layers, what it refuses, and a run through train.py."""

import math

import pandas as pd
import pytest
import torch

from tests.toys import X, tiny_vae
from vaelab.errors import ConfigError
from vaelab.hierarchical import Hierarchical
from vaelab.metrics import exact
from vaelab.metrics.likelihood import log_likelihood
from vaelab.reporting import plots


def two_layer(kinds=("binary", "binary"), hidden=(3,)):
    torch.manual_seed(0)
    return Hierarchical([2, 2], list(kinds), hidden=list(hidden), classes=3, learn_prior=True).double()


def test_log_prob_is_the_sum_of_the_layers_conditionals_in_both_directions():
    latent = two_layer()
    params = torch.randn(3, 2, dtype=torch.float64)
    z = latent.posterior(params).sample((5,))
    z1, z2 = z[..., :2], z[..., 2:]
    first, second = latent.layers
    by_hand = first.posterior(params).log_prob(z1) + second.posterior(latent.inference[0](z1)).log_prob(z2)
    torch.testing.assert_close(latent.posterior(params).log_prob(z), by_hand)
    by_hand = second.prior().log_prob(z2) + first.posterior(latent.generative[0](z2)).log_prob(z1)
    torch.testing.assert_close(latent.prior().log_prob(z), by_hand)
    torch.testing.assert_close(latent.flatten(z), z1)


@pytest.mark.parametrize("kinds", [("binary", "binary"), ("discrete", "binary"), ("binary", "discrete")])
def test_posterior_and_prior_are_normalised_and_sampled_at_their_probabilities(kinds):
    """Sum over the support of exp log_prob is 1, and 20000 draws land on each value at its probability (5 SE)."""
    latent = two_layer(kinds)
    support = latent.support()
    params = torch.randn(1, latent.param_size, dtype=torch.float64)
    for dist in (latent.posterior(params), latent.prior()):
        probability = dist.log_prob(support.unsqueeze(1) if dist.batch_shape else support).exp().flatten()
        torch.testing.assert_close(probability.sum(), torch.tensor(1.0, dtype=torch.float64))
        draws = dist.sample((20000,)).reshape(20000, -1)
        frequency = (draws.unsqueeze(1) == support).all(-1).double().mean(0)
        se = (probability * (1 - probability) / 20000).sqrt()
        assert ((frequency - probability).abs() <= 5 * se + 1e-12).all()


@pytest.mark.parametrize("reference", ["prior", "mixture", "tempered"])
def test_the_variance_loss_draws_from_every_reference_through_both_layers(reference):
    """Each reference samples the whole chain: a finite loss whose encoder gradient reaches q(z2|z1)."""
    from vaelab.metrics.gradients import flat_grad
    from vaelab.objectives import VarianceLoss

    vae = tiny_vae(two_layer())
    estimate = VarianceLoss("elbo", 0.5, reference=reference)(vae, X, 4)
    assert estimate.loss.isfinite()
    assert flat_grad(estimate.terms["encoder"], list(vae.latent.inference.parameters())).abs().max() > 0


def test_a_tempered_chain_tempers_every_layer():
    latent = two_layer()
    q = latent.posterior(torch.randn(3, 2, dtype=torch.float64))
    z = q.sample((2,))
    for dist in (q, latent.prior()):
        hot = latent.tempered(dist, 2.0)
        for layer, tempered in zip(dist.layers(z), hot.layers(z)):
            torch.testing.assert_close(tempered.base_dist.logits, layer.base_dist.logits / 2)


def test_continuous_layers_are_reparameterised_layer_by_layer():
    latent = Hierarchical([2, 3], ["continuous", "continuous"], hidden=[4])
    assert latent.kind == "continuous" and latent.posterior(torch.zeros(1, 4)).has_rsample
    params = torch.zeros(2, 4, requires_grad=True)
    z = latent.posterior(params).rsample((3,))
    assert z.shape == (3, 2, 5) and z.requires_grad
    net = latent.inference[0][0].weight
    assert torch.autograd.grad(z[..., 2:].sum(), net)[0].abs().max() > 0  # z2 depends on the conditional's weights


def test_kind_is_shared_by_every_layer_or_else_mixed():
    assert Hierarchical([2, 2], ["binary", "binary"]).kind == "binary"
    assert Hierarchical([2, 2], ["discrete", "discrete"]).kind == "discrete"
    assert Hierarchical([2, 2], ["binary", "continuous"]).kind == "mixed"
    assert Hierarchical([2, 2, 2], ["binary"] * 3).depth == 3


def test_importance_sampled_log_likelihood_converges_to_the_enumerated_log_marginal():
    vae = tiny_vae(two_layer())
    truth = exact.log_marginal(vae, X).detach()
    errors = [(log_likelihood(vae, X, k, chunk=500) - truth).abs().max().item() for k in (10, 20000)]
    assert errors[1] < 0.01 and errors[1] < errors[0]


def test_three_layers_enumerate_and_bound_log_p_x():
    vae = tiny_vae(Hierarchical([1, 2, 1], ["binary"] * 3, hidden=[2]))
    assert vae.latent.support().shape == (2 * 4 * 2, 4)
    assert (exact.log_marginal(vae, X) > exact.elbo(vae, X)).all()


def test_samples_and_reconstructions_draw_through_both_layers():
    torch.manual_seed(0)
    from vaelab.likelihoods import Bernoulli
    from vaelab.model import VAE

    vae = VAE(Hierarchical([2, 2], ["binary", "binary"]), Bernoulli(), event_shape=(2, 2), hidden=(3,))
    samples, reconstructions = plots.prior_samples(vae, 2), plots.reconstructions(vae, X.float().reshape(3, 2, 2))
    assert samples.shape[-2:] == (10, 10) and reconstructions.shape[-2:] == (10, 14)  # 2 x 2 and 2 x 3 padded images
    assert samples.isfinite().all() and reconstructions.isfinite().all()


@pytest.mark.parametrize("arguments,named", [
    (dict(widths=[200, 0]), "latent.widths=[200, 0]"), (dict(widths=[]), "latent.widths=[]"),
    (dict(widths=[2.5]), "latent.widths=[2.5]"), (dict(widths=[2, 2], kinds=["binary"]), "latent.kinds=['binary']"),
    (dict(widths=[2], kinds=["gaussian"]), "latent.kinds=['gaussian']"), (dict(hidden=[0]), "latent.hidden=[0]"),
    (dict(classes=1), "latent.classes=1"), (dict(kinds=["binary", "continuous"], learn_prior=True), "latent.learn_prior=True"),
])
def test_bad_layers_are_refused_naming_the_key(arguments, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        Hierarchical(**arguments)


@pytest.mark.parametrize("overrides,named", [
    (["latent=binary2_linear", "latent.widths=[200,0]"], "latent.widths=[200, 0] is not accepted"),
    (["latent=binary2_linear", "loss=disarm"], "L=2 stochastic layers are not supported"),
])
def test_train_refuses_bad_layers_and_single_layer_estimators_in_one_line(train, overrides, named):
    result = train(*overrides, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    refusals = [line for line in result.stderr.splitlines() if line.startswith("vaelab:")]
    assert len(refusals) == 1 and named in refusals[0]
    assert not (train.dir / "config.yaml").exists() and not (train.dir / "checkpoints").exists()


@pytest.mark.parametrize("loss", ["vimco", "gumbel"])
def test_a_two_layer_run_trains_and_tests_through_train_py(train, loss):
    train("latent=binary2_linear", f"loss={loss}", "S=2", "net.hidden=[]", "dataset=digits", "trainer.max_epochs=1",
          "trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
          "nll_samples=20", "latent.widths=[8,4]")
    metrics = pd.read_csv(next(train.dir.rglob("metrics.csv")))
    for key in ("test/nll", "test/elbo", "val/entropy"):
        assert metrics[key].dropna().map(math.isfinite).all() and metrics[key].notna().any()
    assert list(train.dir.rglob("prior_samples.png")) and not list(train.dir.rglob("traversal.png"))
