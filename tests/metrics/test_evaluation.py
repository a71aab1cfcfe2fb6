"""Importance-sampled log p(x) against the exact value by enumeration; posterior health against closed forms."""

import math

import pytest
import torch
from torch.distributions import AffineTransform, Normal, TransformedDistribution
from torch.distributions import kl_divergence as closed_form_kl

from tests.toys import X, tiny_vae
from vaelab.latents import Binary, Categorical
from vaelab.metrics import exact
from vaelab.metrics.health import ActiveUnits, kl_divergence, posterior_health
from vaelab.metrics.likelihood import log_likelihood

LATENTS = {"categorical": lambda: Categorical(D=2, K=3), "binary": lambda: Binary(D=3)}


def relative_weight_variance(vae, x):
    """Var_q[p(x, z) / (q(z|x) p(x))] by enumeration: k times the variance of the k-sample estimate of p(x) / p(x)."""
    f, log_q = exact.log_weights(vae, x)
    w = (f - exact.log_marginal(vae, x)).exp()
    return (log_q.exp() * (w - 1) ** 2).sum(0)


@pytest.mark.parametrize("latent", LATENTS)
def test_importance_sampled_log_likelihood_matches_the_exact_marginal(latent):
    vae = tiny_vae(LATENTS[latent]())
    k = 5000
    estimate, truth = log_likelihood(vae, X, k=k, chunk=300), exact.log_marginal(vae, X).detach()
    # delta method: sd of log(mean w) is sqrt(Var[w/p] / k)
    sd = (relative_weight_variance(vae, X).detach() / k).sqrt()
    assert ((estimate - truth).abs() < 5 * sd + 1e-6).all(), (estimate, truth, sd)
    assert ((estimate - truth).abs() < 0.05).all()


@pytest.mark.parametrize("latent", LATENTS)
def test_importance_sampled_log_likelihood_is_not_below_the_elbo_on_average(latent):
    vae = tiny_vae(LATENTS[latent]())
    estimates = torch.stack([log_likelihood(vae, X, k=50, seed=s) for s in range(20)]).detach()
    average, standard_error = estimates.mean(0), estimates.std(0) / len(estimates) ** 0.5
    elbo, truth = exact.elbo(vae, X).detach(), exact.log_marginal(vae, X).detach()
    assert (average > elbo).all()
    assert (average <= truth + 4 * standard_error).all()  # a lower bound on average (Jensen), up to Monte Carlo error


def test_chunks_give_the_same_answer_as_one_chunk_and_the_seed_repeats_it():
    vae = tiny_vae(Binary(D=3))  # Bernoulli draws consume the stream alike whatever the chunk size
    whole = log_likelihood(vae, X, k=600, chunk=600)
    for chunk in (13, 100, 599):
        torch.testing.assert_close(log_likelihood(vae, X, k=600, chunk=chunk), whole, rtol=0, atol=1e-10)
    torch.testing.assert_close(log_likelihood(vae, X, k=600, chunk=600), whole, rtol=0, atol=0)
    assert (log_likelihood(vae, X, k=600, seed=1) != whole).any()


def test_the_estimate_leaves_the_global_random_stream_alone():
    vae = tiny_vae()
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    log_likelihood(vae, X, k=10)
    torch.testing.assert_close(torch.rand(5), expected)


def test_posterior_health_matches_enumeration():
    vae = tiny_vae()
    f, log_q = exact.log_weights(vae, X)
    q = log_q.exp()
    log_prior = vae.prior().log_prob(vae.latent.support().unsqueeze(1))
    kl = (q * (log_q - log_prior)).sum(0).mean()
    recon = (q * (f + log_q - log_prior)).sum(0).mean()
    probs = vae.posterior(X).base_dist.probs
    entropy = -(probs * probs.log()).sum(-1).mean()
    health = posterior_health(vae, X, S=20000)
    torch.testing.assert_close(health["kl"], kl.detach())
    torch.testing.assert_close(health["entropy"], entropy.detach())
    torch.testing.assert_close(health["recon"], recon.detach(), atol=0.03, rtol=0)


def test_active_units_count_the_latent_means_that_vary_over_data():
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([1.0, 0.3, 0.05, 0.0])  # variances 1, 0.09, 0.0025, 0: two above 0.01
    means = torch.randn(4000, 4, generator=generator) * scales + 5.0
    metric = ActiveUnits(4)
    for part in means.chunk(7):
        metric.update(part)
    assert metric.compute().item() == 2
    assert math.isclose(ActiveUnits(4, threshold=0.001).forward(means).item(), 3)


def test_kl_falls_back_to_monte_carlo_where_no_closed_form_is_registered():
    q, p = Normal(torch.tensor([0.5]), torch.tensor([0.8])), Normal(torch.tensor([-0.2]), torch.tensor([1.5]))
    as_transform = TransformedDistribution(Normal(torch.zeros(1), torch.ones(1)), AffineTransform(-0.2, 1.5))
    with pytest.raises(NotImplementedError):
        closed_form_kl(q, as_transform)
    torch.manual_seed(0)
    estimate = kl_divergence(q, as_transform, q.sample((200000,)))
    torch.testing.assert_close(estimate, closed_form_kl(q, p), atol=0.01, rtol=0)
