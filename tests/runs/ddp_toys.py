"""Parts for the data-parallel test, named by `_target_` on train.py's command line: a latent whose evaluation
draws are its posterior mean (so every evaluation metric is a function of the weights alone), and a callback
that keeps the training batches each process saw."""

from pathlib import Path

import lightning.pytorch as L
import torch
from torch.distributions import Independent

from vaelab.latents import Gaussian, SyncFreeNormal


class MeanNormal(SyncFreeNormal):
    """N(loc, scale) whose `sample` is loc: evaluation (val/test ELBO, test/nll, health) draws no noise, while
    training's `rsample` draws as ever."""

    def sample(self, sample_shape=torch.Size()):
        return self.loc.expand(self._extended_shape(sample_shape))


class MeanDrawnGaussian(Gaussian):
    def posterior(self, params):
        mu, logvar = params.chunk(2, dim=-1)
        return Independent(MeanNormal(mu, torch.exp(0.5 * logvar)), 1)


class RecordBatches(L.Callback):
    """Saves the training batches of process RANK to `folder`/batches_RANK.pt at the end of training."""

    def __init__(self, folder: str):
        self.folder, self.batches = Path(folder), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(batch.detach().cpu())

    def on_train_end(self, trainer, pl_module):
        torch.save(self.batches, self.folder / f"batches_{trainer.global_rank}.pt")
