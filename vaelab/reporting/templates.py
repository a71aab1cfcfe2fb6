"""A sweep's own prose on the results page: a Jinja template beside its grid, vaelab/conf/sweep/NAME.md, that says what
the study's runs show. The page's Python lays out what every sweep has (tables, winners, plots, provenance) and
names no estimator; the template names the ones its study compares and words its findings, filled with numbers
read from the runs through the helpers below.

A template may set `title` (the panel's heading); what it renders is placed after the sweep's tables."""

import math
from pathlib import Path

import jinja2
import numpy as np

from vaelab.paths import SWEEPS
from vaelab.reporting.report import read_yaml


def where(rows, *pairs):
    """The rows whose columns equal the given values: where(done, "latent", "binary", "S", 4)."""
    for key, value in zip(pairs[::2], pairs[1::2]):
        rows = rows[rows[key] == value] if key in rows else rows.iloc[:0]
    return rows


def mean(rows, metric):
    """The mean of a column over rows, NaN where it was not measured."""
    return rows[metric].mean() if metric in rows and rows[metric].notna().any() else np.nan


def measured(value) -> bool:
    return not (value is None or (isinstance(value, float) and math.isnan(value)))


def groups(rows, key, order=()):
    """[(value, its rows)] of `key`, the values named in `order` first, in that order, then the others sorted."""
    found = dict(list(rows.groupby(key))) if key in rows else {}
    return sorted(found.items(), key=lambda item: (list(order).index(item[0]) if item[0] in order else len(order),
                                                   str(item[0])))


def setting(sweep_dir, rows, key):
    """A config value (a dotted key such as loss.mix) of the first of `rows`' runs, from its saved config.yaml."""
    value = read_yaml(Path(sweep_dir) / rows.run.iloc[0] / "config.yaml")
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(SWEEPS), undefined=jinja2.StrictUndefined,
                                 keep_trailing_newline=True, autoescape=False)


def sweep_text(name, sweep_dir, done, **context):
    """(title or None, markdown lines) of vaelab/conf/sweep/NAME.md rendered over the sweep's finished runs `done`;
    (None, []) where the sweep has no template."""
    if not name or not (SWEEPS / f"{name}.md").is_file():
        return None, []
    template = ENVIRONMENT.get_template(f"{name}.md")
    module = template.make_module(dict(done=done, where=where, mean=mean, measured=measured, groups=groups,
                                       setting=lambda rows, key: setting(sweep_dir, rows, key), nan=np.nan,
                                       **context))
    text = str(module).strip("\n")
    return getattr(module, "title", None), text.splitlines() if text else []
