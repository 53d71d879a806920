"""TensorBoard event files without TensorFlow: a scalar writer and a reader (for tests / tools).

Record framing (TFRecord, as TensorBoard reads it):
    uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
masked_crc = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32), crc = CRC-32C (Castagnoli).
Data is a serialized `tensorflow.Event` protobuf, hand-encoded here with the fields we need:
    Event:   1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary (Summary)
    Summary: 1 value (repeated Value)
    Value:   1 tag (string), 2 simple_value (float)
The first record of a file is an Event with file_version 'brain.Event:2'.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path


def _make_crc_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # reversed Castagnoli polynomial
        table.append(crc)
    return table


_CRC_TABLE = _make_crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (check value: crc32c(b'123456789') == 0xE3069283)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values are encoded as 10-byte two's complement
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def encode_event(
    wall_time: float, step: int, scalars=None, file_version: str | None = None
) -> bytes:
    """Serializes an Event with optional scalar summaries {tag: value}."""
    out = bytearray(_varint(1 << 3 | 1) + struct.pack("<d", wall_time))
    out += _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        out += _length_delimited(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _length_delimited(
                1,
                _length_delimited(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value),
            )
            for tag, value in scalars.items()
        )
        out += _length_delimited(5, summary)
    return bytes(out)


def frame_record(data: bytes) -> bytes:
    """TFRecord framing of one serialized proto."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


class EventWriter:
    """Appends scalar summaries to `<logdir>/events.out.tfevents.<time>.<host>`.

    Args:
      logdir: folder (created).
    """

    def __init__(self, logdir) -> None:
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self.path = logdir / name
        self._file = open(self.path, "ab")
        self._file.write(frame_record(encode_event(time.time(), 0, file_version="brain.Event:2")))
        self._file.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Writes one Event holding every scalar of `values` at `step`."""
        values = {k: float(v) for k, v in values.items()}
        self._file.write(frame_record(encode_event(time.time(), step, values)))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# ---- reading -------------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes):
    """Yields (field number, wire type, value) of a serialized message."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def decode_event(data: bytes) -> dict:
    """Parses an Event into {'wall_time', 'step', 'file_version', 'scalars': {tag: value}}."""
    event = {"wall_time": 0.0, "step": 0, "file_version": None, "scalars": {}}
    for field, _, value in _fields(data):
        if field == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif field == 2:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif field == 3:
            event["file_version"] = value.decode()
        elif field == 5:
            for f, _, summary_value in _fields(value):
                if f != 1:
                    continue
                tag, number = None, None
                for vf, _, v in _fields(summary_value):
                    if vf == 1:
                        tag = v.decode()
                    elif vf == 2:
                        number = struct.unpack("<f", v)[0]
                if tag is not None and number is not None:
                    event["scalars"][tag] = number
    return event


def read_events(path) -> list[dict]:
    """Reads every record of an event file, checking both CRCs of each.

    Raises:
      ValueError on a corrupt record (a truncated last record is ignored, as TensorBoard does).
    """
    data = Path(path).read_bytes()
    events, pos = [], 0
    while pos + 12 <= len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if header_crc != masked_crc32c(header):
            raise ValueError(f"{path}: bad length CRC at byte {pos}")
        if pos + 12 + length + 4 > len(data):
            break
        payload = data[pos + 12 : pos + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
        if payload_crc != masked_crc32c(payload):
            raise ValueError(f"{path}: bad data CRC at byte {pos}")
        events.append(decode_event(payload))
        pos += 16 + length
    return events
