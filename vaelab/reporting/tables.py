"""The results page's tables: per latent kind, mean ± std over seeds of each measured column, a row per estimator
(and per any other key a panel compares, such as the variance loss's reference distribution)."""

import pandas as pd

from vaelab.reporting.report import ESTIMATOR, SECONDS_PER_EPOCH

COLUMNS = {  # metric -> (column title, format of mean and std)
    "test/nll": ("test NLL (nats)", "{:.2f}"),
    "test/elbo": ("test ELBO (nats)", "{:.2f}"),
    "test/kl": ("test KL(q‖p)", "{:.2f}"),
    "grad/encoder/variance": ("encoder grad variance", "{:.3g}"),
    "grad/encoder/snr": ("encoder grad SNR", "{:.3f}"),
    "eval/train_elbo": ("train ELBO (nats)", "{:.2f}"),       # the DisARM protocol's (vaelab.callbacks.bounds)
    "eval/test_bound": ("test bound (nats)", "{:.2f}"),
    SECONDS_PER_EPOCH: ("s / epoch", "{:.1f}"),
    "cost/sec_per_step": ("s / step", "{:.4f}"),
}
LATENTS = ("continuous", "discrete", "binary")   # the benchmark's latent kinds, in the page's order
LABELS = {ESTIMATOR: "estimator", "loss.reference": "reference r"}   # a row key's column title


def main_S(done):
    """The S every estimator is compared at: the one most runs used."""
    return int(done.S.mode().iloc[0])


def mean_std(values, fmt):
    values = values.dropna()
    if values.empty:
        return "–"
    return fmt.format(values.mean()) + (f" ± {fmt.format(values.std())}" if len(values) > 1 else "")


def latent_table(done, kind, S, keys=(ESTIMATOR,)):
    """Rows of one latent kind at S, one per value of `keys` (the estimator, and e.g. its reference): seeds and
    mean ± std of each measured column, best first by the first measured column (test NLL where measured)."""
    rows = done[(done.latent == kind) & (done.S == S)]
    measured = [m for m in COLUMNS if m in rows and rows[m].notna().any()]
    keys = list(keys)
    groups = dict(list(rows.groupby(keys)))    # (value of each key) -> its runs
    sign = -1 if measured[0] == "test/elbo" else 1
    return pd.DataFrame([{**{LABELS.get(k, k): v for k, v in zip(keys, values)}, "seeds": len(group),
                          **{COLUMNS[m][0]: mean_std(group[m], COLUMNS[m][1]) for m in measured}}
                         for values, group in sorted(groups.items(), key=lambda item: sign * item[1][measured[0]].mean())])
