"""The worked examples of docs/estimators.md ("Adding an estimator", "Objectives that learn"): new objectives and their
enumeration tests.

The objective is the score-function gradient of the importance-weighted bound with no baseline: VIMCO
without its leave-one-out control variates (Mnih & Rezende 2016). It is unbiased, and much noisier than VIMCO.
"""

import math

import lightning.pytorch as L
import pytest
import torch
from torch import nn
from torch.distributions import Independent

from tests.toys import X, assert_unbiased, tiny_vae, total_variance
from vaelab.data import Digits
from vaelab.latents import Categorical
from vaelab.likelihoods import Bernoulli
from vaelab.metrics import exact
from vaelab.metrics.gradients import flat_grad, gradient_draws
from vaelab.model import VAE
from vaelab.module import VAEModule
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


# --- an objective that learns ----------------------------------------------------------------------

class LearnedBaseline(Objective):
    """REINFORCE with a learned scalar control variate c, z_s ~ q(z|x) drawn without a gradient path:

        g = -(1/SB) sum_{s,b} (f(z_s, x_b) - c) grad log q(z_s|x_b),   unbiased for -grad ELBO whatever c is.

    c is trained to lower the variance of g, taken with respect to q's logits: E[g] does not depend on c, so
    d/dc E[|g|^2] = E[2 g . dg/dc] is the gradient of that variance. The surrogate |g|^2 has it, with g built by a
    double backward on a detached copy of the logits, so that it reaches c alone. The decoder gets grad log p(x, z).
    """

    latents = ("discrete", "binary")
    score_function = True
    lr = 0.1

    def __init__(self):
        super().__init__()
        self.c = nn.Parameter(torch.zeros(()))

    def forward(self, vae, x, S):
        q = vae.posterior(x)
        z = q.sample((S,))                                           # [S, B, ...], detached
        log_q, log_joint = q.log_prob(z), vae.log_joint(x, z)        # [S, B] each
        f = (log_joint - log_q).detach()
        loss = -((f - self.c.detach()) * log_q).mean() - log_joint.mean()
        logits = q.base_dist.logits.detach().requires_grad_()          # q's parameters, held fixed
        held = Independent(type(q.base_dist)(logits=logits), q.reinterpreted_batch_ndims)
        (g,) = torch.autograd.grad(-((f - self.c) * held.log_prob(z)).mean(), logits, create_graph=True)
        return Estimate(loss=loss, elbo=f.mean(0), surrogate=(g**2).sum())


@pytest.mark.parametrize("c", [0.0, -40.0, 25.0])
def test_the_learned_baseline_is_unbiased_wherever_c_is(c):
    torch.manual_seed(1)
    vae, objective = tiny_vae(), LearnedBaseline().double()
    objective.c.data.fill_(c)                             # far from its optimum, near -6, on either side
    for part in ("encoder", "decoder"):
        truth = flat_grad(-exact.elbo(vae, X).mean(), list(getattr(vae, part).parameters()))
        assert_unbiased(gradient_draws(objective, vae, X, 2, 1000, part), truth)


def test_its_surrogate_reaches_c_alone_and_the_model_gets_the_loss_gradient_to_the_bit():
    torch.manual_seed(1)
    vae, objective = tiny_vae(), LearnedBaseline().double()
    estimate = objective(vae, X, 4)
    model = list(vae.parameters())
    with_surrogate = torch.autograd.grad(estimate.loss + estimate.surrogate, model + [objective.c], retain_graph=True)
    alone = torch.autograd.grad(estimate.loss, model, retain_graph=True, allow_unused=True)
    assert all(torch.equal(a, b) for a, b in zip(with_surrogate, alone, strict=False))
    (c_grad,) = torch.autograd.grad(estimate.surrogate, objective.c)
    assert with_surrogate[-1] == c_grad != 0


def test_learning_c_lowers_the_encoder_gradient_variance():
    """A few hundred steps of c alone on the surrogate, on one batch: the variance falls (ascending the surrogate, or
    fitting c to the wrong target, would raise it or leave it)."""
    torch.manual_seed(1)
    vae, objective = tiny_vae(), LearnedBaseline().double()
    before = total_variance(gradient_draws(objective, vae, X, 2, 300))
    optimiser = torch.optim.Adam(objective.parameters(), lr=objective.lr)
    for _ in range(300):
        optimiser.zero_grad()
        objective(vae, X, 2).surrogate.backward()
        optimiser.step()
    after = total_variance(gradient_draws(objective, vae, X, 2, 300))
    assert after < before / 4, (after, before, objective.c.item())


def test_a_run_trains_c_in_its_own_group_at_its_lr_and_carries_it_in_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    vae = VAE(Categorical(D=3, K=4), Bernoulli(), (8, 8), hidden=(16,))
    module = VAEModule(vae, LearnedBaseline(), S=2)
    trainer = L.Trainer(max_steps=20, limit_val_batches=0, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=Digits(batch_size=32))
    [optimiser] = trainer.optimizers
    assert [group["lr"] for group in optimiser.param_groups] == [1e-3, 0.1]
    assert optimiser.param_groups[1]["params"] == [module.objective.c]
    assert module.objective.c.item() < -1                 # from 0 towards the mean of f: at lr 1e-3 it would be > -0.02
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert torch.equal(saved["state_dict"]["objective.c"], module.objective.c.detach())
    assert saved["optimizer_states"][0]["param_groups"][1]["lr"] == 0.1
