"""Each picture is drawn, has the expected pixel size, shows what it claims and is not blank."""

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from vaelab.callbacks.figures import publish
from vaelab.errors import ConfigError
from vaelab.latents import Binary, Categorical, Gaussian
from vaelab.likelihoods import Bernoulli
from vaelab.model import VAE
from vaelab.reporting import plots

H, W = 6, 5


def vae(latent):
    torch.manual_seed(0)
    return VAE(latent, Bernoulli(), (H, W), hidden=(16,), activation=nn.Tanh)


def grid_size(rows, cols):
    """make_grid's (height, width) with 2-pixel padding."""
    return rows * (H + 2) + 2, cols * (W + 2) + 2


def saved(image, tmp_path, name="x.png"):
    """Write the picture, read it back as an array [H, W, C]; check it is not blank."""
    path = plots.save(image, tmp_path / name)
    pixels = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).float()
    assert pixels.std() > 1, f"{name} is blank"
    return pixels


def test_manifold_decodes_the_prior_quantile_grid(tmp_path):
    model, n = vae(Gaussian(2)), 5
    seen = []
    model.decoder.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    image = plots.manifold(model, n)
    assert tuple(image.shape[1:]) == grid_size(n, n)
    u = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n) + 0.5) / n)
    z = seen[0].reshape(n, n, 2)
    torch.testing.assert_close(z[0, :, 0], u)          # z1 increases left to right
    torch.testing.assert_close(z[:, 0, 1], u.flip(0))  # z2 decreases top to bottom
    assert saved(image, tmp_path).shape[:2] == grid_size(n, n)


def test_manifold_refuses_a_latent_that_is_not_2d_continuous():
    with pytest.raises(ConfigError, match="latent=.*continuous of size 3.*latent.D=2"):
        plots.manifold(vae(Gaussian(3)))


def test_reconstructions_show_the_inputs_above_their_reconstructions(tmp_path):
    model = vae(Gaussian(2))
    x = torch.bernoulli(torch.full((4, H, W), 0.5), generator=torch.Generator().manual_seed(0))
    image = plots.reconstructions(model, x)
    assert tuple(image.shape[1:]) == grid_size(2, 4)
    torch.testing.assert_close(image[0, 2:2 + H, 2:2 + W], x[0])
    torch.testing.assert_close(image[0, 2:2 + H, 2 + (W + 2):2 + (W + 2) + W], x[1])
    assert saved(image, tmp_path).shape[:2] == grid_size(2, 4)


@pytest.mark.parametrize("latent", [Gaussian(3), Categorical(D=4, K=3)], ids=["continuous", "discrete"])
def test_prior_samples(tmp_path, latent):
    assert saved(plots.prior_samples(vae(latent), 3), tmp_path).shape[:2] == grid_size(3, 3)


def test_traversal_runs_one_variable_through_its_classes(tmp_path):
    model, D, K = vae(Categorical(D=4, K=3)), 4, 3
    seen = []
    model.decoder.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    image = plots.traversal(model, variables=3)
    assert tuple(image.shape[1:]) == grid_size(3, K)
    z = seen[0].reshape(3, K, D, K)
    for d in range(3):
        torch.testing.assert_close(z[d, :, d], torch.eye(K))           # variable d takes each class in turn
        others = [e for e in range(D) if e != d]
        assert (z[d, :, others] == z[d, :1, others]).all()               # the rest stay fixed
    assert saved(image, tmp_path).shape[:2] == grid_size(3, K)


def test_traversal_of_a_binary_latent_turns_one_bit_off_and_on(tmp_path):
    model, D = vae(Binary(D=5)), 5
    seen = []
    model.decoder.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    image = plots.traversal(model, variables=4)
    z = seen[0].reshape(4, 2, D)
    for d in range(4):
        assert z[d, :, d].tolist() == [0.0, 1.0]                         # bit d off, then on
        others = [e for e in range(D) if e != d]
        assert (z[d, :, others] == z[d, :1, others]).all()               # the rest stay fixed
    assert saved(image, tmp_path).shape[:2] == grid_size(4, 2)


def test_learning_curves_and_side_by_side_have_their_pixel_sizes(tmp_path):
    csv = tmp_path / "metrics.csv"
    pd.DataFrame({"step": [0, 1, 2, 3], "train/elbo": [-90, -80, None, -70], "val/elbo": [None, -85, -75, None]}).to_csv(csv)
    assert saved(plots.learning_curves(csv, size=(5, 3), dpi=50), tmp_path, "curves.png").shape[:2] == (150, 250)
    panels = [("elbo", torch.rand(3, 20, 20)), ("variance", torch.rand(3, 20, 20))]
    assert saved(plots.side_by_side(panels, panel=2.0, dpi=50), tmp_path, "cmp.png").shape[:2] == (120, 200)


def test_publish_sends_the_png_to_tensorboard(tmp_path):
    path = plots.save(plots.prior_samples(vae(Gaussian(2)), 2), tmp_path / "samples.png")
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = type("Trainer", (), {"loggers": [logger], "global_step": 7})()
    publish(trainer, path, "figures/prior_samples")
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    (image,) = events.Images("figures/prior_samples")
    assert (image.step, image.width, image.height) == (7, *Image.open(path).size)


def test_a_run_too_short_to_log_still_draws_its_figures(train):
    train("dataset=digits", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=0",
          "trainer.limit_test_batches=1", "nll_samples=0")
    assert (train.dir / "figures" / "reconstructions.png").is_file()
    assert not (train.dir / "figures" / "learning_curves.png").exists()  # nothing was logged to draw
