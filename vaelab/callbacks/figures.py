"""A callback that draws a run's pictures every few epochs and at the end, as labelled PNGs (with PDFs) in the
run directory, and sends them to the loggers that take images (W&B, TensorBoard; CSV keeps the files)."""

from pathlib import Path

import lightning.pytorch as L
import pandas as pd
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torchvision.io import read_image

from vaelab.errors import require
from vaelab.reporting import plots
from vaelab.rng import fixed_batch, seeded

CURVES = ("train/elbo", "val/elbo")


def publish(trainer, path: Path, key: str):
    """Send the PNG at `path` to every logger that takes images."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, read_image(str(path)), trainer.global_step)


class Figures(L.Callback):
    """Every `every_n_epochs` validation epochs, and at the end of training, writes to `dirpath`:
    reconstructions of the first `n` validation images, n x n prior samples, the manifold (2-D Gaussian latent,
    a `manifold_n` grid) and a traversal (discrete or binary latent), those two for one stochastic layer only,
    for data that are images; at the end also learning curves, from the train/elbo and val/elbo it records at
    each validation (kept in checkpoints, so a resumed run draws the whole run), whatever the loggers.
    Each figure is titled `title` (the run). Each picture goes to the loggers once per global step: the end's
    are not sent again when the last epoch drew them already. Drawn under `seed`, so the training random
    stream is untouched and every run is drawn alike.
    """

    def __init__(self, dirpath, every_n_epochs: int = 5, n: int = 8, manifold_n: int = 20, seed: int = 0,
                 title: str = ""):
        require(every_n_epochs >= 1, "callbacks.figures.every_n_epochs", every_n_epochs, "a positive integer")
        require(n >= 1, "callbacks.figures.n", n, "a positive integer")
        require(manifold_n >= 1, "callbacks.figures.manifold_n", manifold_n, "a positive integer")
        self.dirpath, self.every_n_epochs, self.n, self.manifold_n, self.seed = Path(dirpath), every_n_epochs, n, manifold_n, seed
        self.title, self.history, self.published_step = title, [], None

    def pictures(self, trainer, pl_module):
        vae, title = pl_module.vae, self.title
        if len(vae.event_shape) != 2:
            return  # not images (e.g. linear_gaussian's vectors): learning curves only
        yield "reconstructions", lambda: plots.reconstructions_figure(
            vae, fixed_batch(trainer.datamodule, self.n).to(pl_module.device, pl_module.dtype), title)
        yield "prior_samples", lambda: plots.prior_samples_figure(vae, self.n, title)
        if vae.latent.depth > 1:
            return  # a grid or traversal of z1 alone ignores p(z1|z2): samples and reconstructions only
        if vae.latent.kind == "continuous" and vae.latent.size == 2:
            yield "manifold", lambda: plots.manifold_figure(vae, self.manifold_n, title)
        if vae.latent.kind in ("discrete", "binary"):
            yield "traversal", lambda: plots.traversal_figure(vae, self.n, title)

    def draw(self, trainer, pl_module, suffix=""):
        was_training = pl_module.training
        pl_module.eval()
        sent = self.published_step == trainer.global_step
        with seeded(self.seed, pl_module.device):
            for name, picture in self.pictures(trainer, pl_module):
                path = plots.save(picture(), self.dirpath / f"{name}{suffix}.png")
                if not sent:
                    publish(trainer, path, f"figures/{name}")
        self.published_step = trainer.global_step
        pl_module.train(was_training)

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        logged = trainer.callback_metrics
        self.history.append({"step": trainer.global_step, **{k: logged[k].item() for k in CURVES if k in logged}})
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs == 0:
            self.draw(trainer, pl_module, f"_epoch{epoch:03d}")

    def on_train_end(self, trainer, pl_module):
        self.draw(trainer, pl_module)
        if self.history:  # a run too short to validate has nothing to draw
            curves = plots.learning_curves(pd.DataFrame(self.history), title=self.title)
            publish(trainer, plots.save(curves, self.dirpath / "learning_curves.png"), "figures/learning_curves")

    def state_dict(self):
        return {"history": self.history}

    def load_state_dict(self, state_dict):
        self.history = list(state_dict.get("history", []))
