"""Reader for the IDX format of MNIST-style files (LeCun et al.), gzipped or not."""

import gzip
import struct
from pathlib import Path

import torch

_DTYPES = {0x08: torch.uint8}


def read_idx(path: Path) -> torch.Tensor:
    """IDX header: two zero bytes, a type code (0x08 = uint8), the number of dims, then each dim big-endian."""
    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (header {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != torch.Size(shape).numel():
        raise ValueError(f"{path} is truncated: header says {shape}, body has {len(body)} bytes")
    return torch.frombuffer(bytearray(body), dtype=_DTYPES[code]).reshape(shape)
