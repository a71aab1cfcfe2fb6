"""Pictures of what a VAE learned, as PNGs: the 2-D latent manifold (Kingma & Welling 2014, Fig. 4),
reconstructions, prior samples, a discrete-latent traversal and learning curves.

Image grids are decoded means E[x|z] laid out by torchvision's make_grid (2-pixel padding).
`python -m vaelab.reporting.plots RUN_DIR [RUN_DIR ...] --out FILE` sets several runs' manifolds side by side.
"""

import argparse
from pathlib import Path

import matplotlib
import torch
from torch.distributions import Normal
from torchvision.utils import make_grid, save_image

from vaelab.errors import require

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

PAD = 2


@torch.no_grad()
def decoded(vae, z):
    """Decoded means E[x|z] as images [N, C, H, W], for z of shape [N, latent]."""
    means = vae.likelihood.mean(vae.decode(z), vae.event_shape)
    return means.reshape(len(z), -1, *vae.event_shape[-2:])


def manifold(vae, n: int = 20):
    """n x n grid decoding z = (Phi^-1(u_j), Phi^-1(u_i)), u = (i + 1/2)/n, for a 2-D Gaussian latent; [C, H, W]."""
    latent = vae.latent
    require(latent.kind == "continuous" and latent.size == 2, "latent", f"{latent.kind} of size {latent.size}",
            "a 2-dimensional continuous latent for a manifold (latent=continuous latent.D=2)")
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    q = Normal(0.0, 1.0).icdf(u).to(next(vae.parameters()))
    rows, cols = torch.meshgrid(q.flip(0), q, indexing="ij")
    return make_grid(decoded(vae, torch.stack([cols, rows], -1).reshape(-1, 2)), nrow=n, padding=PAD)


@torch.no_grad()
def reconstructions(vae, x):
    """Inputs x [n, ...] in the top row, decoded means at one exact draw z ~ q(z|x) below; [C, H, W]."""
    x_images = x.reshape(len(x), -1, *vae.event_shape[-2:])
    recon = decoded(vae, vae.posterior(x).sample())
    return make_grid(torch.cat([x_images, recon]), nrow=len(x), padding=PAD)


@torch.no_grad()
def prior_samples(vae, n: int = 8):
    """n x n decoded draws z ~ p(z); [C, H, W]."""
    return make_grid(decoded(vae, vae.prior().sample((n * n,))), nrow=n, padding=PAD)


@torch.no_grad()
def traversal(vae, variables: int = 8):
    """One row per variable d of a discrete or binary latent (the first `variables`): z_d run through its
    values (the K classes, or 0 and 1), the rest fixed at one prior draw; [C, H, W]."""
    prior = vae.prior()
    z = prior.sample()
    values = torch.eye(z.shape[-1]) if vae.latent.kind == "discrete" else torch.tensor([[0.0], [1.0]])
    z = z.reshape(len(z), -1)  # [D, K], or [D, 1] for binary
    rows = torch.arange(min(len(z), variables))
    grid = z.expand(len(rows), len(values), *z.shape).clone()
    grid[rows, :, rows] = values.to(z)
    return make_grid(decoded(vae, grid.reshape(-1, *prior.event_shape)), nrow=len(values), padding=PAD)


def learning_curves(metrics_csv, keys=("train/elbo", "val/elbo"), size=(6.4, 4.0), dpi=100):
    """ELBO against training step from a CSVLogger's metrics.csv; a Figure of size*dpi pixels."""
    frame = pd.read_csv(metrics_csv)
    figure, ax = plt.subplots(figsize=size, dpi=dpi)
    for key in keys:
        if key in frame:
            points = frame[["step", key]].dropna()
            ax.plot(points["step"], points[key], label=key, marker="o" if key.startswith("val") else None)
    ax.set(xlabel="step", ylabel="ELBO (nats)")
    ax.legend()
    figure.tight_layout()
    return figure


def side_by_side(images, panel: float = 3.0, dpi=100):
    """(name, image [C, H, W]) pairs in one row, each titled with its name; a Figure of (panel*len, panel+0.4)
    inches at dpi."""
    figure, axes = plt.subplots(1, len(images), figsize=(panel * len(images), panel + 0.4), dpi=dpi, squeeze=False)
    for ax, (name, image) in zip(axes[0], images):
        ax.imshow(image.permute(1, 2, 0).cpu().numpy())
        ax.set_title(name)
        ax.axis("off")
    figure.tight_layout()
    return figure


def save(image_or_figure, path: Path) -> Path:
    """Write a grid tensor [C, H, W] pixel for pixel, or a Figure at its own size; closes the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image_or_figure, torch.Tensor):
        save_image(image_or_figure, path)
    else:
        image_or_figure.savefig(path)
        plt.close(image_or_figure)
    return path


def main(argv=None):
    from vaelab.evaluate import load_run, run_name

    parser = argparse.ArgumentParser(prog="python -m vaelab.reporting.plots", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories (or checkpoints) with a 2-D continuous latent")
    parser.add_argument("--out", default="manifolds.png", help="PNG to write")
    parser.add_argument("-n", type=int, default=20, help="grid side of each manifold")
    args = parser.parse_args(argv)
    images = []
    for run in args.runs:
        module, _, cfg = load_run(run)
        images.append((run_name(run, cfg), manifold(module.vae, args.n)))
    print(save(side_by_side(images), Path(args.out)))


if __name__ == "__main__":
    main()
