"""The worked example of docs/estimators.md ("Adding an estimator"): a new objective and its enumeration test.

The objective is the score-function gradient of the importance-weighted bound with no baseline: VIMCO
without its leave-one-out control variates (Mnih & Rezende 2016). It is unbiased, and much noisier than VIMCO.
"""

import math

import torch

from tests.toys import X, assert_unbiased, tiny_vae, total_variance
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad, gradient_draws
from vaelab.objectives import VIMCO, Estimate, Objective


class ScoreFunctionIWAE(Objective):
    """L = log (1/S) sum_s w_s, w_s = exp f(z_s, x), z_s ~ q(z|x) drawn without a gradient path:

        grad E[L] = E[L sum_s grad log q(z_s|x) + grad L],   the last term with every z_s held fixed.

    The surrogate L.detach() * sum_s log q(z_s|x) + L has that gradient; the decoder gets grad L alone.
    """

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        z = q.sample((S,))                                # [S, B, ...], detached
        log_q = q.log_prob(z)                             # log q(z_s|x), [S, B]
        f = vae.log_weight(x, z, q)                       # log p(x|z) + log p(z) - log q(z|x), [S, B]
        bound = torch.logsumexp(f, 0) - math.log(S)       # L, [B]
        surrogate = bound.detach() * log_q.sum(0) + bound
        return Estimate(loss=-surrogate.mean(), elbo=f.detach().mean(0), metrics={"iwae": bound.detach().mean()})


def test_score_function_iwae_is_unbiased_for_the_gradient_of_the_bound():
    torch.manual_seed(1)
    S = 2
    vae = tiny_vae()                                      # 4 pixels; 2 categorical variables of 3 classes: 9 values of z
    for part in ("encoder", "decoder"):
        params = list(getattr(vae, part).parameters())
        truth = flat_grad(-exact.iwae(vae, X, S).mean(), params)   # the bound summed over all 9^2 pairs of z
        assert_unbiased(gradient_draws(ScoreFunctionIWAE(), vae, X, S, 1000, part), truth)


def test_vimco_baselines_lower_the_encoder_gradient_variance():
    torch.manual_seed(1)
    vae = tiny_vae()
    plain = total_variance(gradient_draws(ScoreFunctionIWAE(), vae, X, 4, 300))
    vimco = total_variance(gradient_draws(VIMCO(), vae, X, 4, 300))
    assert vimco < plain / 2, (vimco, plain)
