"""Latent spaces against torch.distributions' general forms."""

import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaelab.latents import Gaussian
from vaelab.metrics.health import kl_divergence as health_kl


def test_gaussian_kl_from_the_prior_is_torchs_general_normal_kl_with_the_same_gradient():
    """The prior's own closed form, (mu^2 + s^2 - 1) / 2 - log s, against torch's KL between any two Normals."""
    torch.manual_seed(0)
    latent = Gaussian(3)
    params = (2 * torch.randn(5, 6)).requires_grad_()
    q = latent.posterior(params)
    found = kl_divergence(q, latent.prior())
    general = kl_divergence(Independent(Normal(q.base_dist.loc, q.base_dist.scale), 1),
                            Independent(Normal(torch.zeros(3), torch.ones(3)), 1))
    torch.testing.assert_close(found, general)
    assert found.shape == (5,) and torch.all(found > 0)
    torch.testing.assert_close(torch.autograd.grad(found.sum(), params, retain_graph=True)[0],
                               torch.autograd.grad(general.sum(), params)[0])
    torch.testing.assert_close(health_kl(q, latent.prior(), None), general)   # the prior expanded to q's batch
