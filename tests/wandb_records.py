"""Read what an offline W&B run recorded, from its transaction log `offline-run-*/run-ID.wandb`.

wandb 0.31 ships no reader for it: the file is the W&B header (7 bytes) followed by LevelDB-log blocks of
32 KiB, each record a 7-byte header (crc32, length, type) and a slice of a serialised `Record` protobuf.
"""

import json
import struct

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7
FULL, LAST = 1, 4


def records(path):
    """Every protobuf Record in a .wandb file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    position, pieces = HEADER, b""
    while position + HEADER <= len(data):
        room = BLOCK - position % BLOCK
        _, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        if room < HEADER or (length == 0 and kind == 0):    # block padding
            position += room
            continue
        pieces += data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def offline_run(path):
    """(run record, config dict, history rows, final summary) of one offline run's .wandb file."""
    run, config, history, summary = None, {}, [], {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            history.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.summary.update})
    return run, config, history, summary
