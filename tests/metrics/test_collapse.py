"""Posterior collapse is told from posterior health, and named with the likely cause for the estimator."""

import math

import pytest
import torch

from vaelab.latents import Binary, Categorical, Gaussian
from vaelab.metrics.collapse import likely_cause, message, signs
from vaelab.objectives import ELBO, Reinforce, VarianceLoss


def logged(**values):
    return {f"test/{k}": torch.tensor(v) for k, v in values.items()}


@pytest.mark.parametrize("latent,metrics,expected", [
    (Gaussian(4), logged(kl=1e-6, active_units=0.0), "KL(q||p) 1e-06 nats per datum, no active units"),
    (Gaussian(4), logged(kl=3.0, active_units=0.0), "no active units"),
    (Categorical(D=2, K=10), logged(kl=1.4e-6, entropy=math.log(10)),
     "KL(q||p) 1.4e-06 nats per datum, entropy 2.303 of at most 2.303 nats per variable"),
    (Categorical(D=2, K=10), logged(kl=0.5, entropy=0.995 * math.log(10)), "entropy 2.291 of at most 2.303 nats per variable"),
    (Binary(D=3), logged(kl=0.2, entropy=math.log(2)), "entropy 0.6931 of at most 0.6931 nats per variable"),
])
def test_collapse_is_named_by_its_signs(latent, metrics, expected):
    assert signs(metrics, latent, "test") == expected


@pytest.mark.parametrize("latent,metrics", [
    (Gaussian(4), logged(kl=20.0, active_units=3.0)),
    (Categorical(D=2, K=10), logged(kl=4.0, entropy=1.0)),
    (Binary(D=3), logged(kl=2.0, entropy=0.3)),
    (Gaussian(4), {}),  # nothing logged (no test data): nothing to say
])
def test_a_model_that_uses_its_latent_is_not_called_collapsed(latent, metrics):
    assert signs(metrics, latent, "test") is None


def test_the_cause_names_the_estimator_and_what_to_try():
    assert "loss.decoder=elbo (VarGrad)" in likely_cause(VarianceLoss(decoder="variance"))
    assert "score-function" in likely_cause(VarianceLoss(decoder="elbo"))
    assert "score-function" in likely_cause(Reinforce())
    assert "KL term" in likely_cause(ELBO())
    assert message("no active units", ELBO()).endswith("See docs/estimators.md#posterior-collapse")
