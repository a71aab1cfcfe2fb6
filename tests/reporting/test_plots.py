"""Each picture is drawn, has the expected pixel size, shows what it claims and is not blank; each figure is
labelled, titled, printed at DPI with a PDF beside it, its images drawn CELL inches wide."""

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


def labels(ticks):
    return [t.get_text() for t in ticks]


def assert_printable(figure, tmp_path, name, cells_across):
    """Saved at >= 150 dpi with a PDF beside it, each image drawn at least CELL inches wide where room allows."""
    width_inches = figure.get_size_inches()[0]
    path = plots.save(figure, tmp_path / f"{name}.png")
    image = Image.open(path)
    assert image.info["dpi"][0] >= 150 and path.with_suffix(".pdf").stat().st_size > 0
    assert image.size[0] == round(width_inches * plots.DPI)
    assert width_inches >= min(plots.CELL * cells_across, plots.COLUMN)


def test_reconstructions_figure_labels_its_rows_and_names_the_run(tmp_path):
    x = torch.bernoulli(torch.full((4, H, W), 0.5), generator=torch.Generator().manual_seed(0))
    figure = plots.reconstructions_figure(vae(Gaussian(2)), x, "vargrad, discrete latent, S=8, digits")
    (ax,) = figure.axes
    assert labels(ax.get_yticklabels()) == ["input", "reconstruction"]
    assert ax.get_title() == "vargrad, discrete latent, S=8, digits"
    assert_printable(figure, tmp_path, "reconstructions", 4)


def test_manifold_figure_labels_its_quantile_axes(tmp_path):
    figure = plots.manifold_figure(vae(Gaussian(2)), 5, "elbo")
    (ax,) = figure.axes
    assert "Phi^{-1}(u)" in ax.get_xlabel() and ax.get_xlabel().startswith("$z_1") and ax.get_ylabel().startswith("$z_2")
    assert labels(ax.get_xticklabels()) == ["-1.3", "-0.5", "0.0", "0.5", "1.3"]   # Phi^-1 at u = 0.1, 0.3, ..., 0.9
    assert labels(ax.get_yticklabels()) == ["1.3", "0.5", "0.0", "-0.5", "-1.3"]   # z2 grows upwards
    assert_printable(figure, tmp_path, "manifold", 5)


@pytest.mark.parametrize("latent,columns,xlabel", [(Categorical(D=4, K=3), ["0", "1", "2"], "class"),
                                                   (Binary(D=5), ["0", "1"], "bit value")], ids=["discrete", "binary"])
def test_traversal_figure_labels_variables_and_classes(tmp_path, latent, columns, xlabel):
    figure = plots.traversal_figure(vae(latent), 3, "run")
    (ax,) = figure.axes
    assert labels(ax.get_yticklabels()) == ["$z_{1}$", "$z_{2}$", "$z_{3}$"] and "variable" in ax.get_ylabel()
    assert labels(ax.get_xticklabels()) == columns and ax.get_xlabel() == xlabel
    assert_printable(figure, tmp_path, "traversal", len(columns))


def test_learning_curves_stay_apart_and_a_single_point_shows(tmp_path):
    frame = pd.DataFrame({"step": [10, 20, 30], "train/elbo": [-90, -80, -70], "val/elbo": [None, -75, None]})
    figure = plots.learning_curves(frame, title="reinforce, discrete latent, S=8, digits")
    (ax,) = figure.axes
    train, val = ax.get_lines()
    assert len(val.get_xdata()) == 1 and val.get_marker() not in ("None", "", None)   # one point, drawn
    assert (train.get_marker(), train.get_linestyle()) != (val.get_marker(), val.get_linestyle())
    assert train.get_linestyle() != val.get_linestyle() and train.get_marker() != val.get_marker()
    assert ax.get_xlabel() == "training step" and ax.get_title().startswith("reinforce")
    assert_printable(figure, tmp_path, "curves", 1)


def test_side_by_side_manifolds_fill_two_columns_with_quantile_axes(tmp_path):
    images = [("elbo (S=1)", plots.manifold(vae(Gaussian(2)), 5)), ("iwae (S=8)", plots.manifold(vae(Gaussian(2)), 5))]
    figure = plots.side_by_side(images, panel=plots.PAGE / 2, n=5, event_size=(H, W))
    assert figure.get_size_inches()[0] == pytest.approx(plots.PAGE)
    assert [ax.get_title() for ax in figure.axes] == ["elbo (S=1)", "iwae (S=8)"]
    assert all(labels(ax.get_xticklabels()) == ["-1.3", "0.0", "1.3"] for ax in figure.axes)
    assert_printable(figure, tmp_path, "side", 10)


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
    assert not (train.dir / "figures" / "learning_curves.png").exists()  # nothing was validated to draw


def test_learning_curves_are_drawn_without_a_csv_logger(train):
    train("dataset=digits", "logger=tensorboard", "trainer.max_epochs=2", "trainer.limit_train_batches=2",
          "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "nll_samples=0")
    assert Image.open(train.dir / "figures" / "learning_curves.png").info["dpi"][0] >= 150
