"""Where vaelab's configs lie: the Hydra config tree (train.yaml and its groups) and the sweeps' grids and page
templates in its sweep/ group. Named once here so that train.py, sweep.py, the library and an installed copy agree."""

from pathlib import Path

CONF = Path(__file__).resolve().parent / "conf"
SWEEPS = CONF / "sweep"
