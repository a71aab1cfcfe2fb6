"""Train one VAE: `python train.py loss=variance latent=discrete` (add -m for a sweep). The command is vaelab's
own, `python -m vaelab ARGS` (vaelab/__main__.py); run from this script, DDP's further ranks start this script
again, with the folder it lies in, and the user's own modules there, importable."""

from vaelab.__main__ import cli

if __name__ == "__main__":
    cli()
