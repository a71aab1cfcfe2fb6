"""Data files under the data root: checked against known checksums before they are parsed,
with errors that name the file, or the folder searched and how to point vaelab elsewhere."""

import gzip
import hashlib
import os
import zlib
from pathlib import Path


class CorruptFile(ValueError):
    """A data file whose checksum is not the known one: truncated, altered or a different version."""


def gunzip(path: Path) -> bytes:
    """The decompressed content of a .gz file, CorruptFile naming it if the stream is broken."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise CorruptFile(f"{path} is truncated or not gzip data ({e}). Replace the file.") from e


def verify(path: Path, algorithm: str, expected: str, content: bytes | None = None) -> Path:
    """`path` if the digest of its bytes (or of `content` read from it, e.g. gunzipped) is `expected`,
    else CorruptFile naming it."""
    if content is None:
        with open(path, "rb") as f:
            found = hashlib.file_digest(f, algorithm).hexdigest()
    else:
        found = hashlib.new(algorithm, content).hexdigest()
    if found != expected:
        what = "" if content is None else " (of its decompressed content)"
        raise CorruptFile(f"{path} is corrupted or truncated: its {algorithm}{what} is {found}, "
                          f"not the known {expected}. Replace the file.")
    return path


def absent(what: str, folder: Path, expected: str, remedy: str = "") -> FileNotFoundError:
    """The error for a data set whose files are not where they were looked for."""
    where = os.environ.get("VAELAB_DATA_DIR")
    return FileNotFoundError(
        f"{what} not found: searched {folder} for {expected}. Set VAELAB_DATA_DIR "
        f"({'now ' + where if where else 'unset'}) or data_dir=... to the data root that holds it{remedy}.")
