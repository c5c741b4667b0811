"""CRC-32 checksums of MCAP files, so that a reader tells a damaged file from a good one.

MCAP has three optional checksums: each chunk's (over its uncompressed records), the data
section's (in the DataEnd record) and the summary's (in the Footer); 0 means "not available".
``rosbags`` writes none of them, so a flipped bit in a recorded episode could pass unnoticed:
:func:`seal` fills them in once a file is written, and :func:`check` verifies the file's framing
and whatever checksums it has before any record is parsed. Files written without them stay
readable, only less checked. ``ros2 bag``, ``rosbags`` and the ``mcap`` tools verify the same
fields.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

from mcap.data_stream import ReadDataStream
from mcap.records import Chunk
from mcap.stream_reader import get_chunk_data_stream

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_CHUNK, OP_DATA_END = 0x02, 0x06, 0x0F
RECORD_HEADER = 9  # opcode (1) + body length (8)
FOOTER_BODY = 20  # summary_start (8), summary_offset_start (8), summary_crc (4)
CHUNK_CRC_AT = 24  # in a chunk's body: after start time, end time, uncompressed size
Data = bytes | bytearray


class Layout(NamedTuple):
    """Where the parts of an MCAP file are."""

    chunks: list[tuple[int, int]]  # (body offset, body end) of every chunk
    data_end: int  # offset of the DataEnd record: the data section is everything before it
    footer: int  # offset of the Footer record


def records(data: Data, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(opcode, record offset, body end) of each record between ``start`` and ``end``."""
    pos = start
    while pos < end:
        if pos + RECORD_HEADER > end:
            raise ValueError(f"record at byte {pos} is cut off: expected a {RECORD_HEADER}-byte "
                             f"record header before byte {end}")
        (length,) = struct.unpack_from("<Q", data, pos + 1)
        body_end = pos + RECORD_HEADER + length
        if body_end > end:
            raise ValueError(f"record at byte {pos} (opcode 0x{data[pos]:02x}) is {length} bytes "
                             f"long: expected it to end by byte {end}")
        yield data[pos], pos, body_end
        pos = body_end


def layout(data: Data) -> Layout:
    """Where the parts are, after checking the magic at both ends and the record framing."""
    if not data:
        raise ValueError("is empty (0 bytes): expected an MCAP file")
    if data[:len(MAGIC)] != MAGIC:
        raise ValueError(f"starts with {data[:len(MAGIC)]!r}: expected the MCAP magic {MAGIC!r}")
    footer = len(data) - len(MAGIC) - RECORD_HEADER - FOOTER_BODY
    if data[-len(MAGIC):] != MAGIC or footer < len(MAGIC):
        raise ValueError(f"ends without the MCAP magic after {len(data)} bytes: expected a "
                         "whole file (truncated, or still being written?)")
    if data[footer] != OP_FOOTER or struct.unpack_from("<Q", data, footer + 1)[0] != FOOTER_BODY:
        raise ValueError(f"has no footer record at byte {footer}: expected one before the end "
                         "magic")
    chunks, data_end = [], None
    for opcode, pos, body_end in records(data, len(MAGIC), footer):
        if opcode == OP_CHUNK and data_end is None:
            chunks.append((pos + RECORD_HEADER, body_end))
        elif opcode == OP_DATA_END and data_end is None:
            data_end = pos
    if data_end is None:
        raise ValueError("has no DataEnd record: expected one after the data section")
    return Layout(chunks, data_end, footer)


def _chunk_crc(data: Data, body: int, end: int) -> tuple[int, int]:
    """(stored, computed) CRC-32 of the chunk whose body spans ``body``..``end``."""
    try:
        chunk = Chunk.read(ReadDataStream(BytesIO(data[body:end])))
        stream, size = get_chunk_data_stream(chunk)
        records = stream.read(size)
    except Exception as err:  # zstd, lz4 and the record parser each raise their own errors
        raise ValueError(f"chunk at byte {body - RECORD_HEADER} does not decompress "
                         f"({type(err).__name__}): expected its records") from None
    return chunk.uncompressed_crc, zlib.crc32(records)


def _summary_crc(data: Data, footer: int) -> tuple[int, int]:
    """(stored, computed) summary CRC: from the summary's start through the footer's fields
    before the CRC (from the footer itself when there is no summary section)."""
    summary_start, _, stored = struct.unpack_from("<QQI", data, footer + RECORD_HEADER)
    start = summary_start or footer
    if not 0 < start <= footer:
        raise ValueError(f"footer summary_start {summary_start}: expected an offset within the "
                         f"file's {len(data)} bytes")
    return stored, zlib.crc32(data[start:footer + RECORD_HEADER + 16])


def check(data: Data) -> None:
    """Raise ValueError, one line saying what is wrong, unless ``data`` is a whole MCAP file
    whose every present checksum matches."""
    parts = layout(data)
    for body, end in parts.chunks:
        stored, computed = _chunk_crc(data, body, end)
        if stored and stored != computed:
            raise ValueError(f"chunk at byte {body - RECORD_HEADER} has CRC-32 {computed:#010x}: "
                             f"expected the stored {stored:#010x} (damaged)")
    (stored,) = struct.unpack_from("<I", data, parts.data_end + RECORD_HEADER)
    computed = zlib.crc32(data[:parts.data_end])
    if stored and stored != computed:
        raise ValueError(f"data section has CRC-32 {computed:#010x}: expected the stored "
                         f"{stored:#010x} (damaged)")
    stored, computed = _summary_crc(data, parts.footer)
    if stored and stored != computed:
        raise ValueError(f"summary section has CRC-32 {computed:#010x}: expected the stored "
                         f"{stored:#010x} (damaged)")


def seal(path: Path) -> None:
    """Write the chunk, data-section and summary CRCs into the MCAP file at ``path`` (in place,
    before it is fsynced and published)."""
    data = bytearray(path.read_bytes())
    parts = layout(data)
    for body, end in parts.chunks:
        _, computed = _chunk_crc(data, body, end)
        struct.pack_into("<I", data, body + CHUNK_CRC_AT, computed)
    struct.pack_into("<I", data, parts.data_end + RECORD_HEADER,
                     zlib.crc32(data[:parts.data_end]))
    _, computed = _summary_crc(data, parts.footer)
    struct.pack_into("<I", data, parts.footer + RECORD_HEADER + 16, computed)
    with open(path, "r+b") as f:
        f.write(data)
