"""The LightningModule: a VAE, an injected objective, the optimiser, and what is logged."""

import lightning.pytorch as L
import torch

from vaelab.errors import require


class VAEModule(L.LightningModule):
    """Trains `vae` by `objective(vae, x, S)`; never looks at which objective it holds.

    Logs train/loss and the comparable train/elbo every step, val/elbo each epoch and
    test/elbo at the end; the evaluation ELBO uses `eval_samples` exact draws from q.
    """

    def __init__(self, vae, objective, S: int = 1, lr: float = 1e-3, eval_samples: int = 1):
        super().__init__()
        require(lr > 0, "lr", lr, "a positive learning rate")
        require(eval_samples >= 1, "eval_samples", eval_samples, "a positive integer")
        self.vae, self.objective = vae, objective
        self.S, self.lr, self.eval_samples = S, lr, eval_samples

    def training_step(self, x, batch_idx):
        estimate = self.objective(self.vae, x, self.S)
        self.log("train/loss", estimate.loss, prog_bar=True)
        self.log("train/elbo", estimate.elbo.mean(), prog_bar=True)
        for name, value in estimate.metrics.items():
            self.log(f"train/{name}", value)
        return estimate.loss

    def validation_step(self, x, batch_idx):
        self.log("val/elbo", self.vae.elbo(x, self.eval_samples).mean(), prog_bar=True)

    def test_step(self, x, batch_idx):
        self.log("test/elbo", self.vae.elbo(x, self.eval_samples).mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)
