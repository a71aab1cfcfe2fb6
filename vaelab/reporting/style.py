"""The one look of vaelab's figures: their sizes, dpi, fonts and the style of each compared curve. Every figure
module (plots, report, page) draws through `plt` from here, so a paper's figures, a sweep's report and the results
page agree."""

from itertools import cycle

import matplotlib

matplotlib.use("Agg")   # files only: no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402

DPI = 200          # figures for a paper, with a PDF beside each PNG
PAGE_DPI = 150     # the results page's PNGs, committed: small files
CELL = 0.45        # inches per image in a grid (a 28-pixel digit at about 3x)
COLUMN = 3.4       # inches: one column of a two-column paper
PAGE = 7.0         # inches: both columns
PANEL = (5.0, 3.8)   # inches per panel of a comparison figure (a latent kind, or a sweep's key)
FONTS = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7}
MARKERS, LINES = "osD^vP*Xp", ("-", "--", "-.", ":")  # 9 markers against 10 colours: 90 names apart

plt.rcParams.update(FONTS)


def styles(names):
    """A colour, marker and line style per curve, fixed by its sorted name, so that every plot agrees and curves
    that overlap, or print in grey, stay apart: the cycles' lengths share no factor, so no two of the first 90 names
    share a colour and a marker."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: dict(color=c, marker=m, linestyle=ls, markevery=0.1)
            for name, c, m, ls in zip(sorted(names), cycle(colours), cycle(MARKERS), cycle(LINES))}


def panels(count, dpi=PAGE_DPI):
    """(Figure, axes) of `count` comparison panels in a row, PANEL inches each."""
    fig, axes = plt.subplots(1, count, figsize=(PANEL[0] * count, PANEL[1]), squeeze=False, dpi=dpi)
    return fig, axes[0]
