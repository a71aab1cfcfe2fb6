"""Files that are whole or absent: a write goes to a temp file beside its target, is flushed to the disk (fsync) and
renamed over the target (os.replace, atomic on POSIX within one file system), so a reader, a crash or a full disk
never leaves half a file, and the previous file stays intact until the new one is whole.

    with replacing(path) as f:
        f.write(data)
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

PARTIAL = ".partial"   # the suffix of a temp file while it is written


@contextmanager
def replacing(path):
    """Yield a binary file that replaces `path` once the body returns and the file is on the disk; if anything
    fails (the body, the write, the fsync), the temp file is removed and `path` is left as it was."""
    path = Path(path)
    f = tempfile.NamedTemporaryFile("wb", prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent, delete=False)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(f.name, path)
    except BaseException:
        Path(f.name).unlink(missing_ok=True)
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing through `replacing`: a failed save (ENOSPC) leaves the previous
    last.ckpt whole, where Lightning's own truncates the file before it writes."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as f:
            torch.save(checkpoint, f)
