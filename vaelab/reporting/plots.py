"""Pictures of what a VAE learned, fit for a paper: the 2-D latent manifold (Kingma & Welling 2014, Fig. 4),
reconstructions, prior samples, a discrete-latent traversal and learning curves.

Image grids are decoded means E[x|z] laid out by torchvision's make_grid (2-pixel padding); the `*_figure`
functions draw them labelled and titled, each image CELL inches wide, saved at DPI with a PDF alongside (sizes,
dpi and fonts: vaelab.reporting.style).
`python -m vaelab.reporting.plots RUN_DIR [RUN_DIR ...] --out FILE` sets several runs' manifolds side by side,
PAGE inches wide (both columns of a two-column paper); `python sweep.py fig5` draws its runs' through it.
"""

import argparse
from pathlib import Path
from string import ascii_lowercase

import pandas as pd
import torch
from torch.distributions import Normal
from torchvision.utils import make_grid, save_image

from vaelab.errors import require
from vaelab.reporting.style import CELL, COLUMN, DPI, PAGE, plt, styles

PAD = 2


@torch.no_grad()
def decoded(vae, z):
    """Decoded means E[x|z] as images [N, C, H, W], for z of shape [N, latent]."""
    means = vae.likelihood.mean(vae.decode(z), vae.event_shape)
    return means.reshape(len(z), -1, *vae.event_shape[-2:])


def quantiles(n: int) -> torch.Tensor:
    """z = Phi^-1(u) at u = (i + 1/2)/n, i = 0..n-1: the manifold's grid values on each axis."""
    return Normal(0.0, 1.0).icdf((torch.arange(n, dtype=torch.float64) + 0.5) / n)


def manifold(vae, n: int = 20):
    """n x n grid decoding z = (Phi^-1(u_j), Phi^-1(u_i)), u = (i + 1/2)/n, for a 2-D Gaussian latent; [C, H, W]."""
    latent = vae.latent
    require(latent.kind == "continuous" and latent.size == 2, "latent", f"{latent.kind} of size {latent.size}",
            "a 2-dimensional continuous latent for a manifold (latent=continuous latent.D=2)")
    q = quantiles(n).to(next(vae.parameters()))
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


def centres(count: int, size: int) -> list[float]:
    """Pixel centres of `count` images of `size` pixels along one axis of a make_grid image."""
    return [PAD + i * (size + PAD) + (size - 1) / 2 for i in range(count)]


def grid_figure(grid, rows: int, cols: int, title: str, width: float = PAGE):
    """(Figure, Axes) showing a make_grid image of rows x cols images, CELL inches each (less where the grid would
    be wider than `width` inches), titled, without ticks until the caller labels them."""
    cell = min(CELL, width / cols)
    figure, ax = plt.subplots(figsize=(cell * cols + 1.2, cell * rows + 0.8), dpi=DPI)
    ax.imshow(grid.permute(1, 2, 0).clamp(0, 1).float().cpu().numpy(), interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    ax.set_title(title)
    return figure, ax


def image_size(vae) -> tuple[int, int]:
    return tuple(vae.event_shape[-2:])


def reconstructions_figure(vae, x, title: str = ""):
    """Reconstructions with their rows labelled input and reconstruction."""
    height, _ = image_size(vae)
    figure, ax = grid_figure(reconstructions(vae, x), 2, len(x), title)
    ax.set_yticks(centres(2, height), ["input", "reconstruction"])
    ax.set_xlabel("validation images, z ~ q(z|x)")
    figure.tight_layout()
    return figure


def prior_samples_figure(vae, n: int = 8, title: str = ""):
    figure, ax = grid_figure(prior_samples(vae, n), n, n, title, width=COLUMN)
    ax.set_xlabel("E[x|z], z ~ p(z)")
    figure.tight_layout()
    return figure


def label_quantiles(ax, n: int, height: int, width: int, ticks: int = 5):
    """The manifold's axes: z1 = Phi^-1(u) left to right, z2 bottom to top, at about `ticks` of its n grid values."""
    q, ends = quantiles(n).tolist(), [int(i * (n - 1) / (ticks - 1)) for i in range(ticks // 2)]
    shown = sorted({*ends, *(n - 1 - i for i in ends), *([(n - 1) // 2] if n % 2 else [])})  # symmetric about 0
    ax.set_xticks([centres(n, width)[i] for i in shown], [f"{q[i]:.1f}" for i in shown])
    ax.set_yticks([centres(n, height)[i] for i in shown], [f"{q[::-1][i]:.1f}" for i in shown])
    ax.set_xlabel(r"$z_1 = \Phi^{-1}(u)$")
    ax.set_ylabel(r"$z_2 = \Phi^{-1}(u)$")


def manifold_figure(vae, n: int = 20, title: str = "", width: float = PAGE):
    height, size = image_size(vae)
    figure, ax = grid_figure(manifold(vae, n), n, n, title, width=width)
    label_quantiles(ax, n, height, size)
    figure.tight_layout()
    return figure


def traversal_figure(vae, variables: int = 8, title: str = ""):
    """A traversal with its rows labelled by variable and its columns by the class (or bit value) it takes."""
    height, width = image_size(vae)
    grid = traversal(vae, variables)
    shape = vae.prior().event_shape  # [D, K] (discrete) or [D] (binary)
    values = shape[-1] if vae.latent.kind == "discrete" else 2
    rows = min(shape[0], variables)
    figure, ax = grid_figure(grid, rows, values, title, width=COLUMN)
    ax.set_yticks(centres(rows, height), [f"$z_{{{d + 1}}}$" for d in range(rows)])
    ax.set_xticks(centres(values, width), [str(k) for k in range(values)])
    ax.set_xlabel("class" if vae.latent.kind == "discrete" else "bit value")
    ax.set_ylabel("variable (the others fixed at a prior draw)")
    figure.tight_layout()
    return figure


def learning_curves(metrics, keys=("train/elbo", "val/elbo"), title: str = "", size=(COLUMN, 2.6), dpi=DPI):
    """ELBO against training step, from a CSVLogger's metrics.csv or a frame with a step column; a Figure of
    size*dpi pixels, one styled curve per key."""
    frame = metrics if isinstance(metrics, pd.DataFrame) else pd.read_csv(metrics)
    figure, ax = plt.subplots(figsize=size, dpi=dpi)
    for key, style in styles([k for k in keys if k in frame]).items():
        points = frame[["step", key]].dropna()
        ax.plot(points["step"], points[key], label=key, markersize=4, **{**style, "markevery": None})
    ax.set_xlabel("training step")
    ax.set_ylabel("ELBO (nats)")
    ax.set_title(title)
    ax.legend()
    figure.tight_layout()
    return figure


def side_by_side(images, panel: float = PAGE / 3, dpi=DPI, n: int | None = None, event_size=None):
    """(name, image [C, H, W]) pairs in one row, each titled with its name; a Figure of (panel*len, panel+0.4)
    inches at dpi. Manifolds (`n` per side, images of `event_size` pixels) get their quantile axes."""
    figure, axes = plt.subplots(1, len(images), figsize=(panel * len(images), panel + 0.4), dpi=dpi, squeeze=False)
    for ax, (name, image) in zip(axes[0], images):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
        ax.set_title(name)
        ax.set(xticks=[], yticks=[])
        if n is not None:
            label_quantiles(ax, n, *event_size, ticks=3)
    figure.tight_layout()
    return figure


def save(image_or_figure, path: Path) -> Path:
    """Write a grid tensor [C, H, W] pixel for pixel, or a Figure at its own size and dpi with a PDF beside
    the PNG (vector, for print); closes the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image_or_figure, torch.Tensor):
        save_image(image_or_figure, path)
    else:
        image_or_figure.savefig(path)
        image_or_figure.savefig(path.with_suffix(".pdf"))
        plt.close(image_or_figure)
    return path


def manifolds(runs, path: Path, n: int = 20) -> Path:
    """The 2-D manifolds of `runs` (run directories or checkpoints) side by side in their order, lettered (a), (b),
    ... and named by their run, PAGE inches wide in all, written to `path` (a PDF beside it)."""
    from vaelab.finished import load_run, run_name

    images, shape = [], None
    for letter, run in zip(ascii_lowercase, runs):
        module, _, cfg = load_run(run)
        images.append((f"({letter}) {run_name(run, cfg)}", manifold(module.vae, n)))
        shape = image_size(module.vae)
    return save(side_by_side(images, panel=PAGE / max(len(images), 2), n=n, event_size=shape), Path(path))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m vaelab.reporting.plots", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories (or checkpoints) with a 2-D continuous latent")
    parser.add_argument("--out", default="manifolds.png", help="PNG to write (a PDF is written beside it)")
    parser.add_argument("-n", type=int, default=20, help="grid side of each manifold")
    args = parser.parse_args(argv)
    print(manifolds(args.runs, Path(args.out), args.n))


if __name__ == "__main__":
    main()
