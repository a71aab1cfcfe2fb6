"""A full disk leaves every file whole: status.json ends "failed", no temp file is left, and a checkpoint that
could not be written leaves the previous last.ckpt as it was (issue 25 §5)."""

import errno
import json
import os
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from tests.runs.test_experiments import composed
from vaelab.atomic import PARTIAL, replacing
from vaelab.checkpoint import load_checkpoint
from vaelab.lifecycle import read_status, write_status

SHORT = ["dataset=digits", "latent.D=4", "net.hidden=[8]", "trainer.max_epochs=2", "trainer.limit_train_batches=2",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false",
         "callbacks.figures.every_n_epochs=1000", "extras.print_config=false", "nll_samples=10"]


def no_space(*args, **kwargs):
    """What a write to a full disk raises."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def temps(folder: Path) -> list:
    return list(folder.rglob(f"*{PARTIAL}"))


def test_a_write_that_fails_leaves_the_previous_file_and_no_temp(tmp_path):
    path = tmp_path / "record.bin"
    path.write_bytes(b"whole")
    with pytest.raises(OSError, match="No space left"), replacing(path) as f:
        f.write(b"half of the new")
        no_space()
    assert path.read_bytes() == b"whole" and temps(tmp_path) == []
    with replacing(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and temps(tmp_path) == []


def test_a_status_write_that_fails_at_fsync_keeps_the_previous_status(tmp_path, monkeypatch):
    write_status(tmp_path, "running")
    monkeypatch.setattr(os, "fsync", no_space)   # the bytes are written, and do not reach the disk
    with pytest.raises(OSError):
        write_status(tmp_path, "done", result=-90.0)
    assert read_status(tmp_path)["status"] == "running" and temps(tmp_path) == []


def run_in_process(tmp_path):
    """`python train.py SHORT` in this process (the command's own `main`: lifecycle, train, exit mapping); returns
    the SystemExit it ends with."""
    from vaelab.__main__ import main

    cfg = composed(*SHORT, output_dir=tmp_path)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    with pytest.raises(SystemExit) as ended:
        main(cfg)
    return ended.value


def assert_failed_for_a_full_disk(tmp_path, ended):
    assert ended.code == f"vaelab: No space left on device: while writing the run in {tmp_path}"   # exit 1, one line
    status = read_status(tmp_path)
    assert status["status"] == "failed" and "No space left on device" in status["error"]
    assert temps(tmp_path) == []


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_last_checkpoint_whole(tmp_path, monkeypatch):
    last, real_save, before = tmp_path / "checkpoints" / "last.ckpt", torch.save, {}

    def full_disk(obj, f, *args, **kwargs):   # the second last.ckpt: a few bytes, then the disk is full
        if Path(getattr(f, "name", "")).name.startswith(".last.ckpt.") and last.exists():
            before["bytes"] = last.read_bytes()
            f.write(b"PK\x03\x04" + bytes(100))
            f.flush()
            no_space()
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    assert_failed_for_a_full_disk(tmp_path, run_in_process(tmp_path))
    assert last.read_bytes() == before["bytes"]
    assert load_checkpoint(last, "resume", "", optimizer=True)["global_step"] == 2   # the end of the first epoch


def test_a_full_disk_when_the_run_is_done_records_it_failed(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def full_disk(fd):   # the status "done" is written to its temp file, then does not reach the disk
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.name.startswith(".status.json.") and json.loads(path.read_text())["status"] == "done":
            no_space()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    assert_failed_for_a_full_disk(tmp_path, run_in_process(tmp_path))
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
