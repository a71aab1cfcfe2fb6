"""A synthetic data set whose marginal likelihood and posterior are exact, for checking
log-likelihood estimators and posteriors against the truth (probabilistic PCA, Tipping & Bishop 1999)."""

from pathlib import Path

import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from vaelab.data.base import InMemoryDataModule, check_held_out, held_out
from vaelab.errors import require


class LinearGaussian(InMemoryDataModule):
    """z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_n), with W and b drawn from N(0, 1) by `seed`; then

        p(x) = N(x; b, W W^T + s^2 I),   p(z|x) = N(z; Sigma W^T (x - b) / s^2, Sigma),
        Sigma = (I + W^T W / s^2)^-1.

    Real-valued data (a Gaussian likelihood); `size` draws split by `seed` into train, `val_size`
    and `test_size`. The distributions are float64 so that exact values are exact.
    """

    support = "real"

    def __init__(self, batch_size: int = 128, x_dim: int = 16, z_dim: int = 2, noise: float = 0.5,
                 size: int = 3000, val_size: int = 500, test_size: int = 500, seed: int = 0,
                 root: str | Path | None = None):
        super().__init__(root, batch_size, binarize="none", seed=seed)
        require(x_dim >= 1, "x_dim", x_dim, "a positive size")
        require(z_dim >= 1, "z_dim", z_dim, "a positive size")
        require(noise > 0, "noise", noise, "a positive standard deviation")
        if isinstance(val_size, int) and isinstance(test_size, int):
            require(size > val_size + test_size, "size", size, f"more draws than val_size + test_size = {val_size + test_size}")
        check_held_out(size, "draws", val_size=val_size, test_size=test_size)
        self.event_shape = (x_dim,)
        self.val_size, self.test_size, self.noise = val_size, test_size, noise
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(x_dim, z_dim, generator=g, dtype=torch.float64)
        self.b = torch.randn(x_dim, generator=g, dtype=torch.float64)
        z = torch.randn(size, z_dim, generator=g, dtype=torch.float64)
        self.x = (z @ self.W.T + self.b + noise * torch.randn(size, x_dim, generator=g, dtype=torch.float64)).float()

    def prior(self):
        z_dim = self.W.shape[1]
        return Independent(Normal(torch.zeros(z_dim, dtype=torch.float64), 1.0), 1)

    def conditional(self, z):
        """p(x|z) for z of shape [..., z_dim]."""
        return Independent(Normal(z.double() @ self.W.T + self.b, self.noise), 1)

    def marginal(self):
        """p(x) = N(b, W W^T + s^2 I)."""
        cov = self.W @ self.W.T + self.noise**2 * torch.eye(len(self.b), dtype=torch.float64)
        return MultivariateNormal(self.b, covariance_matrix=cov)

    def log_marginal(self, x):
        """Exact log p(x), shape x's batch shape."""
        return self.marginal().log_prob(x.double())

    def posterior(self, x):
        """p(z|x) for x of shape [..., x_dim]."""
        precision = torch.eye(self.W.shape[1], dtype=torch.float64) + self.W.T @ self.W / self.noise**2
        cov = torch.linalg.inv(precision)
        mean = (x.double() - self.b) @ self.W @ cov / self.noise**2
        return MultivariateNormal(mean, covariance_matrix=cov)

    def load(self):
        return held_out(self.x, self.seed, self.val_size, self.test_size)
