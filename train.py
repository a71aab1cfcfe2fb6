"""Train one VAE: `python train.py loss=variance latent=discrete` (add -m for a sweep). The command is vaelab's
own, `python -m vaelab ARGS` (vaelab/__main__.py), run here as the main module."""

import runpy

if __name__ == "__main__":
    runpy.run_module("vaelab", run_name="__main__", alter_sys=True)
