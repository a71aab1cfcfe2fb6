"""Gradient diagnostics: how noisy each estimator's gradient is, for the encoder and the decoder.

From R independent draws g_1..g_R of the gradient of the current objective on one fixed batch:
norm = ||mean_r g_r||, variance = tr Cov(g) = sum_p Var_r(g_rp) (1/(R-1)), and
snr = mean_p |mean_r g_rp| / std_r(g_rp). Every step, from the training gradient itself: the running
variance sum_p (v_p - m_p^2) of exponential moving averages m = EMA(g), v = EMA(g^2).
"""

import torch


def flat_grad(value, params):
    """d value / d params as one vector (zeros where value does not depend on a parameter)."""
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])


def gradient_draws(objective, vae, x, S: int, draws: int, part: str = "encoder", term: str | None = None):
    """`draws` independent gradients of objective(vae, x, S).loss (or of one routed term) for vae.<part>'s
    parameters, [draws, P]."""
    params = [p for p in getattr(vae, part).parameters() if p.requires_grad]
    rows = []
    for _ in range(draws):
        estimate = objective(vae, x, S)
        rows.append(flat_grad(estimate.terms[term] if term else estimate.loss, params))
    return torch.stack(rows)


def gradient_statistics(draws: torch.Tensor, eps: float = 1e-12) -> dict[str, torch.Tensor]:
    """norm of the mean, trace of the covariance and mean SNR of gradient draws [R, P]."""
    mean, std = draws.mean(0), draws.std(0)
    return {"norm": mean.norm(), "variance": (std**2).sum(), "snr": (mean.abs() / (std + eps)).mean()}
