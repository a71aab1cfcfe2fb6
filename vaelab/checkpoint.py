"""Reading a checkpoint that may be hostile, truncated or poisoned, as one refusal instead of a traceback.

Every checkpoint vaelab reads goes through `load_checkpoint`: torch's weights-only unpickler (tensors,
containers and plain values; no code runs while loading), then a check that every tensor of the weights
is finite, so that a damaged file is never trained on or evaluated in silence.
"""

import pickle
import zipfile
from pathlib import Path

import torch

from vaelab.errors import ConfigError


def load_checkpoint(path, key: str, remedy: str) -> dict:
    """The checkpoint at `path` (on the CPU), or ConfigError naming `key`, the file, what is wrong and `remedy`."""
    path = Path(path)

    def refuse(problem):
        return ConfigError(f"{key}={str(path)!r} is not accepted: {problem}; {remedy}")

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # the weights-only unpickler met a type it does not allow
        first = str(e).strip().splitlines()
        unsafe = next((line.strip() for line in first if "GLOBAL" in line or "Unsupported" in line), first[0] if first else "")
        raise refuse(f"it holds objects that would run code when loaded ({unsafe}), so it is not loaded") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise refuse(f"it cannot be read, truncated or corrupted ({type(e).__name__}: {str(e).splitlines()[0][:120]})") \
            from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise refuse("it is no Lightning checkpoint (no state_dict)")
    bad = [name for name, value in checkpoint["state_dict"].items()
           if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        raise refuse(f"its weights are not finite ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
    return checkpoint
