"""Reading a checkpoint that may be hostile, truncated or poisoned, as one refusal instead of a traceback.

Every checkpoint vaelab reads goes through `load_checkpoint`: torch's weights-only unpickler (tensors,
containers and plain values; no code runs while loading), then a check that every tensor of the weights
(and, for a run to be continued, of its optimiser state) is finite, so that a damaged file is never trained on
or evaluated in silence.
"""

import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from vaelab.errors import ConfigError, said


def tensors(tree, name: str = ""):
    """(name, tensor) for every tensor in nested dicts and lists, named by their path (state.0.exp_avg)."""
    if isinstance(tree, torch.Tensor):
        yield name, tree
    elif isinstance(tree, dict | list | tuple):
        for key, value in (tree.items() if isinstance(tree, dict) else enumerate(tree)):
            yield from tensors(value, f"{name}.{key}" if name else str(key))


def non_finite(tree) -> list[str]:
    """The names of the floating-point tensors in `tree` with a non-finite element."""
    return [name for name, value in tensors(tree) if value.is_floating_point() and not torch.isfinite(value).all()]


def load_checkpoint(path, key: str, remedy: str, optimizer: bool = False) -> dict:
    """The checkpoint at `path` (on the CPU), or ConfigError naming `key`, the file, what is wrong and `remedy`.
    With `optimizer` (a run to be continued), its optimiser state (Adam's moments) must be finite too."""
    path = Path(path)

    def refuse(problem):
        return ConfigError(f"{key}={str(path)!r} is not accepted: {problem}; {remedy}")

    try:
        with warnings.catch_warnings():   # torch warns of a pickle protocol it does not write, then refuses it below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, KeyError) as e:  # the weights-only unpickler met a global it does not allow, or no pickle
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        unsafe = next((line for line in lines if "GLOBAL" in line), None)   # a class or function, named to be called
        if unsafe is None:   # bytes that are no pickle torch writes (text, another format): nothing names code to run
            detail = next((line for prior, line in zip(lines, lines[1:]) if "WeightsUnpickler error" in prior), None)
            raise refuse(f"it is not a checkpoint ({detail or said(e)})") from None
        raise refuse(f"it holds objects that would run code when loaded ({unsafe}), so it is not loaded") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise refuse(f"it cannot be read, truncated or corrupted ({said(e)})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise refuse("it is no Lightning checkpoint (no state_dict)")
    parts = {"weights are": checkpoint["state_dict"]}
    if optimizer:
        parts["optimiser state is"] = checkpoint.get("optimizer_states", [])
    for part, tree in parts.items():
        bad = non_finite(tree)
        if bad:
            raise refuse(f"its {part} not finite ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
    return checkpoint
