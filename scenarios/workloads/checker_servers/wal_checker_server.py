#!/usr/bin/env python3
"""A checker server (crashlab workload protocol v1.1) for the `wal` example
workloads (`crashlab-workload wal*`): the same judgement as
`crashlab-workload wal checker`, for every directory of a job in one process.

    crashlab run --writer 'crashlab-workload wal writer' \
        --setup 'crashlab-workload wal setup' \
        --checker-server 'python3 scenarios/workloads/checker_servers/wal_checker_server.py' \
        --crash power-loss --tear 512

One request per line on stdin: STATE_DIR<TAB>ACKS_PATH. One answer per
line on stdout, flushed: `ok`, or `violation REASON`. Paths come in the
request: the working directory is not the state directory.
"""

import os
import struct
import sys
import zlib

FILE = "wal.log"
MAGIC = 0x3157414C
HEADER = 16
MAX_PAYLOAD = 2048


def u32_at(data, offset):
    """The little-endian u32 at offset; bytes past the end read as zeros."""
    return struct.unpack("<I", data[offset:offset + 4].ljust(4, b"\0"))[0]


def ack_field(words, key):
    """The value after the first `key` of an ack line (`rec 3 len 77 crc 0a1b2c3d`)."""
    for i, w in enumerate(words[:-1]):
        if w == key:
            return int(words[i + 1], 16 if key == "crc" else 10)
    raise ValueError(f"no {key} in the ack line {' '.join(words)!r}")


def check(state_dir, acks_path):
    try:
        with open(os.path.join(state_dir, FILE), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""
    # The valid prefix: (len, crc) of records 0, 1, ...; a torn last record
    # fails its CRC.
    valid = []
    offset = 0
    while u32_at(data, offset) == MAGIC:
        seq, length, crc = u32_at(data, offset + 4), u32_at(data, offset + 8), u32_at(data, offset + 12)
        if seq != len(valid) or length > MAX_PAYLOAD:
            break
        payload = data[offset + HEADER:offset + HEADER + length].ljust(length, b"\0")
        if zlib.crc32(struct.pack("<I", seq) + payload) != crc:
            break
        valid.append((length, crc))
        offset += HEADER + length
    with open(acks_path) as f:
        acks = f.read().splitlines()
    for line in acks:
        words = line.split()
        seq, length, crc = ack_field(words, "rec"), ack_field(words, "len"), ack_field(words, "crc")
        if seq >= len(valid):
            return f"violation acked record {seq} is missing: {FILE} holds {len(valid)} valid records ({len(data)} bytes)"
        if valid[seq] != (length, crc):
            found = valid[seq]
            return f"violation acked record {seq} differs: len/crc ({found[0]}, {found[1]}) in the log, ({length}, {crc}) acked"
    return "ok"


def main():
    for request in sys.stdin:
        state_dir, acks_path = request.rstrip("\n").split("\t")
        # An exception ends the server: crashlab reports a checker
        # malfunction with its last stderr line, never a pass.
        print(check(state_dir, acks_path), flush=True)


if __name__ == "__main__":
    main()
