"""Gradient diagnostics: the statistics in closed form, the callback ranks estimators by variance and leaves training alone."""

import math

import lightning.pytorch as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from vaelab.callbacks.diagnostics import GradientDiagnostics
from vaelab.data import Digits
from vaelab.latents import Gaussian
from vaelab.likelihoods import Bernoulli
from vaelab.metrics.gradients import gradient_statistics
from vaelab.model import VAE
from vaelab.module import VAEModule
from vaelab.objectives import ELBO, Reinforce


def test_gradient_statistics_in_closed_form():
    draws = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # mean (2, 1), sample variances (2, 2)
    stats = gradient_statistics(draws)
    torch.testing.assert_close(stats["norm"], torch.tensor(math.sqrt(5)))
    torch.testing.assert_close(stats["variance"], torch.tensor(4.0))
    torch.testing.assert_close(stats["snr"], torch.tensor((2 + 1) / math.sqrt(2) / 2))


def fit(objective, tmp_path, callbacks=(), steps=4, seed=0):
    """Train a small Gaussian VAE on digits for `steps` steps; the module and its logged metrics."""
    L.seed_everything(seed)
    data = Digits(batch_size=32)
    vae = VAE(Gaussian(2), Bernoulli(), data.event_shape, hidden=(16,), activation=nn.Tanh)
    module = VAEModule(vae, objective, S=1, nll_samples=0)
    trainer = L.Trainer(max_steps=steps, logger=CSVLogger(tmp_path, name="", version="csv"), callbacks=list(callbacks),
                        limit_val_batches=0, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=1, accelerator="cpu")
    trainer.fit(module, datamodule=data)
    return module, pd.read_csv(tmp_path / "csv" / "metrics.csv")


def test_reinforce_without_baseline_is_noisier_than_the_pathwise_elbo(tmp_path):
    variance = {}
    for name, objective in {"elbo": ELBO(), "reinforce": Reinforce("none")}.items():
        diagnostics = GradientDiagnostics(every_n_steps=1, draws=20, batch_size=32)
        _, metrics = fit(objective, tmp_path / name, [diagnostics], steps=1)
        variance[name] = metrics["grad/encoder/variance"].dropna().iloc[0]
        for column in ("grad/encoder/norm", "grad/encoder/snr", "grad/decoder/variance", "grad/encoder/running_variance"):
            assert metrics[column].notna().any(), column
    assert variance["reinforce"] > 10 * variance["elbo"], variance


@pytest.mark.parametrize("objective", [ELBO, lambda: Reinforce("none"), lambda: Reinforce("ema")],
                         ids=["elbo", "reinforce", "reinforce-ema"])
def test_diagnostics_leave_training_exactly_as_it_was(tmp_path, objective):
    """The EMA baseline's running mean among the state: the draws never advance it."""
    plain, _ = fit(objective(), tmp_path / "plain")
    measured, _ = fit(objective(), tmp_path / "measured", [GradientDiagnostics(every_n_steps=2, draws=3)])
    assert all(value.abs().sum() > 0 for value in plain.objective.state_dict().values())  # the EMA's moved
    for (name, a), b in zip(plain.state_dict().items(), measured.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
