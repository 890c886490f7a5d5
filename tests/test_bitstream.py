"""The mcodec container format (docs/bitstream.md): round trips, and that every
malformed input raises BitstreamError and nothing else.

Streams are written by `BitstreamWriter` (version 5). `_unit`, `_frame4`,
`_tail` and `_patch_header` encode independently of the implementation,
following the spec, to craft malformed version-5 streams (version 4 differs
only in its 4-byte frame_check: `_prefix4` and `check=bytes(4)`); `_unit3`,
`_frame3`, `_tail3` and `_v3_stream` do the same for versions 1-3, which
readers still read (the writer no longer writes them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import struct
import threading
import time
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcodec.codec import bitstream as bs
from mcodec.codec.bitstream import (
    BitstreamReader,
    BitstreamWriter,
    CodingParams,
    EndUnit,
    FrameUnit,
    IndexUnit,
    SequenceHeader,
    UnknownUnit,
    read_bitstream,
)
from mcodec.errors import BitstreamError

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
V3_FILE = Path(__file__).parent / "data" / "v3_cars_6f.bin"  # written by the version-3 codec


def _header(**overrides: object) -> SequenceHeader:
    fields: dict = dict(
        width=64, height=48, fps_num=30000, fps_den=1001, frame_count=0,
        coding=CodingParams(gop=3, quality=5, patch_size=16, search_range=8),
        model_sha256=bytes(range(32)), model_name="mae-v1",
    )
    return SequenceHeader(**{**fields, **overrides})


def _hash(i: int) -> bytes:
    return hashlib.blake2b(i.to_bytes(4, "big"), digest_size=16).digest()


def _frames(count: int = 4) -> list[FrameUnit]:
    """Key, inter, rebuilt, key...; segment shapes vary (none, empty, several); display = index."""
    out = []
    for i in range(count):
        segments = tuple(bytes([i, j]) * (j + 1) for j in range(i % 3)) + ((b"",) if i == 1 else ())
        out.append(FrameUnit(i, (0, 1, 2)[i % 3], 10 + i, bytes([i]) * 16, segments, flags=i % 4))
    return out


def _b_frames(displays: list[int], types: list[int] | None = None) -> list[FrameUnit]:
    """Frames in decode order with these displays: key where display == index and every
    earlier display is below it, else bi-inter/bi-rebuilt/inter in turn (or `types`)."""
    out = []
    for i, d in enumerate(displays):
        if types is not None:
            t = types[i]
        elif d == i and all(e < d for e in displays[:i]):
            t = 0
        else:
            t = (1, 3, 4)[i % 3]
        segments = tuple(bytes([i % 256]) * (n + 1) for n in range(i % 4))
        out.append(FrameUnit(i, t, i % 7, _hash(i), segments, flags=i % 4, display=d))
    return out


CHECK = 3  # bytes of a version-5 frame_check


def _read_back(frame: FrameUnit) -> FrameUnit:
    """What a version-5 reader returns for `frame`: its 3-byte frame_check as frame_hash."""
    return dataclasses.replace(frame, frame_hash=frame.frame_hash[:CHECK])


def _stream(header: SequenceHeader | None = None, frames: list[FrameUnit] | None = None) -> bytes:
    buf = io.BytesIO()
    with BitstreamWriter(buf, header or _header()) as writer:
        for frame in _frames() if frames is None else frames:
            writer.write_frame(frame)
    return buf.getvalue()


def _header_end(data: bytes) -> int:
    """Offset of the first unit: 16 + header_length + 4."""
    return 16 + struct.unpack_from(">I", data, 12)[0] + 4


def _patch_header(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite a field at absolute `offset` and fix the header CRC."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    end = _header_end(data)
    struct.pack_into(">I", out, end - 4, zlib.crc32(out[8:end - 4]))
    return bytes(out)


# --- version 5, crafted by hand ------------------------------------------------------------


def _leb(n: int) -> bytes:
    """Unsigned LEB128, minimal."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _zz(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


def _unit(unit_type: int, payload: bytes, length: bytes | None = None) -> bytes:
    """A version-4/5 unit; `length` replaces the varint bytes of the length."""
    head = bytes([unit_type]) + (_leb(len(payload)) if length is None else length)
    return head + payload + struct.pack(">I", zlib.crc32(head + payload))


def _frame4(frame_type: int = 0, field: int = 0, segments: tuple[bytes, ...] = (), *, flags: int = 0,
            quality: int = 0, check: bytes = bytes(CHECK), n_segments: int | None = None,
            lengths: bytes | None = None, display: bytes | None = None) -> bytes:
    """A version-5 FRAME payload (version 4 with `check=bytes(4)`); `field` is the display field (the display of a key
    frame, else zigzag(display - decode index)); the keywords override raw parts."""
    k = len(segments) if n_segments is None else n_segments
    if lengths is None:
        lengths = b"".join(_leb(len(s)) for s in segments[:-1])
    return (bytes([frame_type | flags << 3 | k << 5, quality]) + check
            + (_leb(field) if display is None else display) + lengths + b"".join(segments))


def _tail(frames: int, key_offsets: list[tuple[int, int]], digest: bytes = bytes(16)) -> bytes:
    """INDEX + END for a crafted version-4/5 stream."""
    entries = b"".join(struct.pack(">IQ", i, o) for i, o in key_offsets)
    return (_unit(0x02, struct.pack(">I", len(key_offsets)) + entries)
            + _unit(0x7F, struct.pack(">Q", frames) + digest))


def _prefix(header: SequenceHeader | None = None) -> bytes:
    """Signature and file header of a version-5 stream (frame_count 0 unless `header` says)."""
    header = header or _header()
    data = _stream(dataclasses.replace(header, frame_count=0), [])
    return _patch_header(data[:_header_end(data)], 32, ">Q", header.frame_count)


def _prefix4(header: SequenceHeader | None = None) -> bytes:
    """Signature and file header of a version-4 stream (format and min reader version 4)."""
    return _patch_header(_patch_header(_prefix(header), 8, ">H", 4), 10, ">H", 4)


def _craft(*units: bytes) -> bytes:
    """A valid version-5 header (frame_count 0) followed by `units`."""
    return _prefix() + b"".join(units)


def _crafted_frames(displays: list[int], types: list[int]) -> tuple[bytes, int]:
    """(version-5 units of frames with these displays and types, offset after them)."""
    body, offset, keys = b"", len(_prefix()), []
    for i, (d, t) in enumerate(zip(displays, types)):
        if t == 0:
            keys.append((i, offset))
        unit = _unit(0x01, _frame4(t, d if t == 0 else _zz(d - i), (b"x",)))
        body += unit
        offset += len(unit)
    return body + _tail(len(displays), keys), offset


# --- versions 1-3, crafted by hand -----------------------------------------------------------


def _unit3(unit_type: int, payload: bytes) -> bytes:
    head = struct.pack(">BI", unit_type, len(payload))
    return head + payload + struct.pack(">I", zlib.crc32(head + payload))


def _frame3(index: int, frame_type: int = 0, segments: tuple[bytes, ...] = (), *, quality: int = 0,
            flags: int = 0, digest: bytes = bytes(16)) -> bytes:
    lengths = struct.pack(f">{len(segments)}I", *map(len, segments))
    return (struct.pack(">IBBB16sB", index, frame_type, quality, flags, digest, len(segments))
            + lengths + b"".join(segments))


def _tail3(frames: int, key_offsets: list[tuple[int, int]]) -> bytes:
    entries = b"".join(struct.pack(">IQ", i, o) for i, o in key_offsets)
    return _unit3(0x02, struct.pack(">I", len(key_offsets)) + entries) + _unit3(0x7F, struct.pack(">Q", frames))


def _prefix3(header: SequenceHeader | None = None, version: int = 3, min_reader: int = 1) -> bytes:
    """Signature and file header as a version-`version` writer wrote them (same layout)."""
    return _patch_header(_patch_header(_prefix(header), 8, ">H", version), 10, ">H", min_reader)


def _craft3(*units: bytes) -> bytes:
    return _prefix3() + b"".join(units)


def _v3_stream(header: SequenceHeader | None = None, frames: list[FrameUnit] | None = None,
               version: int = 3, min_reader: int = 1) -> bytes:
    """What the version-`version` writer wrote for these frames (display = index)."""
    out = bytearray(_prefix3(header, version, min_reader))
    keys = []
    for f in _frames() if frames is None else frames:
        if f.frame_type == 0:
            keys.append((f.index, len(out)))
        out += _unit3(0x01, _frame3(f.index, f.frame_type, f.segments, quality=f.quality, flags=f.flags,
                                    digest=f.frame_hash))
    count = len(_frames() if frames is None else frames)
    return bytes(out) + _tail3(count, keys)


# --- readers --------------------------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """Non-seekable reader returning at most 7 bytes per read (like a slow pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self._data[self._pos:self._pos + min(n, 7)]
        self._pos += len(chunk)
        return chunk


class _Sink(io.RawIOBase):
    """Non-seekable writer."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)


class _CountingBytes(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest_read = 0

    def read(self, n: int | None = -1) -> bytes:
        self.largest_read = max(self.largest_read, n if n is not None and n >= 0 else 1 << 62)
        return super().read(n)


def _read_streaming(data: bytes) -> list:
    reader = BitstreamReader(_Pipe(data))
    return [reader.header, *reader.units()]


def _parses_or_raises(data: bytes) -> bool:
    """Both sized and streaming reads either succeed or raise BitstreamError, alike."""
    outcomes = []
    for read in (read_bitstream, _read_streaming):
        try:
            read(data)
            outcomes.append(True)
        except BitstreamError:
            outcomes.append(False)
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


# --- round trips -----------------------------------------------------------------------


def test_header_round_trip_all_fields() -> None:
    header = SequenceHeader(
        width=16384, height=4096, fps_num=2**32 - 1, fps_den=7, frame_count=0,
        coding=CodingParams(gop=2**32 - 1, quality=255, patch_size=255, search_range=255,
                            mask_mode=bs.MASK_FIXED, mask_ratio_permille=1000,
                            flags=bs.CODING_FLAG_OBMC),
        model_sha256=bytes(range(100, 132)), model_name="A" * 60 + "z.9_",
        color_range=bs.COLOR_RANGE_FULL, color_matrix=bs.COLOR_MATRIX_BT709, extra=b"\x00\xffnew",
    )
    stream = read_bitstream(_stream(header, []))
    assert stream.header == header
    assert stream.header.fps == Fraction(2**32 - 1, 7)
    assert (stream.format_version, stream.min_reader_version) == (5, 5)
    assert stream.frames == () and stream.index == IndexUnit(())
    assert stream.end == EndUnit(0, hashlib.blake2b(digest_size=16).digest())


@pytest.mark.parametrize("flags", [0, bs.CODING_FLAG_OBMC, bs.KNOWN_CODING_FLAGS])
def test_the_writer_writes_version_5_only(flags: int) -> None:
    """Whatever the coding tools, the units with a 3-byte frame_check need a version-5 reader."""
    coding = CodingParams(gop=1, quality=1, patch_size=16, search_range=0, flags=flags)
    stream = read_bitstream(_stream(dataclasses.replace(_header(), coding=coding), []))
    assert stream.header.coding == coding
    assert (stream.format_version, stream.min_reader_version) == (bs.FORMAT_VERSION, 5) == (5, 5)


def test_unknown_coding_flag_bits_are_refused_with_their_offset() -> None:
    with pytest.raises(ValueError, match="unknown coding-tool bits 0x0010"):
        CodingParams(gop=1, quality=1, patch_size=16, search_range=0, flags=0x001F)
    data = _stream(_header(), [])
    flags_at = 16 + 37  # payload start + the field's relative offset (docs section 4)
    assert struct.unpack_from(">H", data, flags_at)[0] == 0
    with pytest.raises(BitstreamError, match="unknown coding-tool bits") as err:
        read_bitstream(_patch_header(data, flags_at, ">H", 0x8000))
    assert err.value.offset == flags_at


def test_frame_units_round_trip_with_offsets_and_index() -> None:
    frames = _frames(7)
    buf = io.BytesIO()
    with BitstreamWriter(buf, _header(frame_count=7)) as writer:
        offsets = [writer.write_frame(f) for f in frames]
    reader = BitstreamReader(io.BytesIO(buf.getvalue()))
    units = list(reader.units())
    assert [u for _, u in units[:7]] == [_read_back(f) for f in frames]
    assert all(len(u.frame_hash) == CHECK and u.display == u.index for _, u in units[:7])
    assert [o for o, _ in units[:7]] == offsets
    assert units[7][1] == IndexUnit(tuple((i, offsets[i]) for i in (0, 3, 6)))
    assert units[8][1] == EndUnit(7, hashlib.blake2b(b"".join(f.frame_hash for f in frames),
                                                     digest_size=16).digest())
    assert reader.position == reader.size == len(buf.getvalue())


@pytest.mark.parametrize("displays", [
    [0, 4, 2, 1, 3, 5, 8, 6, 7],
    [0, 2, 1],
    [0, 2, 1, 3],
    [0, 3, 1, 2, 4, 6, 5],
    [0, 1, 5, 3, 2, 4, 9, 7, 6, 8, 10],
    [0, 64, *range(1, 64)],   # reorder depth exactly MAX_REORDER
    [0, *range(2, 66), 1],    # frame 65 shows second: -64
])
def test_b_frame_display_orders_round_trip(displays: list[int]) -> None:
    frames = _b_frames(displays)
    data = _stream(_header(), frames)
    stream = read_bitstream(data)
    assert list(stream.frames) == [_read_back(f) for f in frames]
    assert [f.display for f in stream.frames] == displays
    sizes = [s.size for s in stream.unit_summaries if s.type_name == "frame"]
    assert sizes == [f.unit_size for f in frames]
    assert stream.index.entries == tuple((f.index, s.offset) for f, s in zip(frames, stream.unit_summaries)
                                         if f.frame_type == 0)
    assert stream.end.digest == hashlib.blake2b(b"".join(f.frame_hash for f in frames), digest_size=16).digest()
    info = bs.inspect(data)
    assert info["totals"]["decode_order"] == displays
    assert info["totals"]["reorder_depth"] == max(abs(d - i) for i, d in enumerate(displays))
    assert [(f["index"], f["display"]) for f in info["frames"]] == list(enumerate(displays))
    assert _read_streaming(data)[1:] == list(BitstreamReader(io.BytesIO(data)).units())


def _closed_gop_orders(draw, n: int) -> list[int]:
    """A valid display order: GOPs of 1..20 frames, each its key frame then a shuffle of the rest."""
    out: list[int] = []
    while len(out) < n:
        size = min(draw(st.integers(1, 20)), n - len(out))
        start = len(out)
        rest = draw(st.permutations(list(range(start + 1, start + size))))
        out += [start, *rest]
    return out


@st.composite
def _display_orders(draw) -> tuple[list[int], list[int]]:
    """(displays, types) in decode order: mostly valid, sometimes broken by one edit."""
    n = draw(st.integers(0, 90))
    displays = _closed_gop_orders(draw, n)
    if n and draw(st.booleans()):
        i = draw(st.integers(0, n - 1))
        edit = draw(st.sampled_from(["swap", "set", "shift"]))
        if edit == "swap":
            j = draw(st.integers(0, n - 1))
            displays[i], displays[j] = displays[j], displays[i]
        elif edit == "set":
            displays[i] = draw(st.integers(0, n + 70))
        else:
            displays = [d + (1 if k >= i else 0) for k, d in enumerate(displays)]
    types = [0 if d == i and all(e < d for e in displays[:i]) else draw(st.sampled_from([1, 2, 3, 4]))
             for i, d in enumerate(displays)]
    if n and draw(st.integers(0, 9)) == 0:
        types[draw(st.integers(0, n - 1))] = draw(st.sampled_from([0, 3]))
    return displays, types


def _valid_order(displays: list[int], types: list[int]) -> bool:
    """The version-4 display rules (docs section 5.5), the plain way: with a whole set."""
    return (sorted(displays) == list(range(len(displays)))
            and all(abs(d - i) <= bs.MAX_REORDER for i, d in enumerate(displays))
            and all(d == i for i, (d, t) in enumerate(zip(displays, types)) if t == 0)
            and (not types or types[0] == 0))


@FAST
@given(_display_orders())
def test_display_rules_of_writer_and_reader_agree_with_the_spec(case: tuple[list[int], list[int]]) -> None:
    """The sliding-window checks (O(MAX_REORDER) state) accept exactly the permutations the
    spec allows, in the writer (ValueError) and the reader (BitstreamError, sized and piped)."""
    displays, types = case
    valid = _valid_order(displays, types)
    data, _ = _crafted_frames(displays, types)
    assert _parses_or_raises(_craft(data)) == valid
    try:
        _stream(_header(), _b_frames(displays, types))
        written = True
    except ValueError:
        written = False
    assert written == valid


def test_display_checks_keep_bounded_state() -> None:
    """Blocks of 65 frames shown in reverse (reorder depth 64): the checker holds at most
    2 * MAX_REORDER + 1 displays, however long the stream."""
    displays = [0] + [d for s in range(1, 1301, 65) for d in range(s + 64, s - 1, -1)]
    frames = _b_frames(displays)
    order, most = bs._DisplayOrder(), 0
    for f in frames:
        order.add(f)
        most = max(most, len(order.ahead))
    assert order.mismatch(len(frames)) is None and 64 <= most <= 2 * bs.MAX_REORDER + 1
    stream = read_bitstream(_stream(_header(), frames))
    assert [f.display for f in stream.frames] == displays


def test_unit_overhead_is_small() -> None:
    """type 1 + length 1-3 + fixed 5 + display 1 + lengths + CRC 4 (docs section 5.2.1)."""
    def overhead(frame: FrameUnit) -> int:
        return frame.unit_size - sum(len(s) for s in frame.segments)

    one = [FrameUnit(5, 1, 3, bytes(16), (bytes(n),), display=4) for n in (0, 100, 122, 1000, 16000)]
    assert [overhead(f) for f in one] == [12, 12, 13, 13, 13]
    assert overhead(FrameUnit(5, 1, 3, bytes(16), (bytes(100),) * 3, display=6)) == 15
    assert overhead(FrameUnit(5, 3, 3, bytes(16), (bytes(10),) * 3, display=4)) == 14
    assert overhead(FrameUnit(5, 1, 3, bytes(16), (bytes(20000),), display=5)) == 14  # 3-byte length
    # What the codec's largest frames take: side information over 127 bytes, latents over 16 KiB.
    assert overhead(FrameUnit(5, 3, 3, bytes(16), (bytes(200), bytes(60000)), display=4)) == 16
    assert overhead(FrameUnit(0, 0, 3, bytes(16), ())) == 12
    frames = [FrameUnit(0, 0, 1, bytes(16), (bytes(100),)), *one[1:2], *one[3:]]
    frames = [dataclasses.replace(f, index=i, display=(0, 2, 1, 3)[i]) for i, f in enumerate(frames)]
    stream = read_bitstream(_stream(_header(), frames))
    assert [s.size for s in stream.unit_summaries[:4]] == [f.unit_size for f in frames]
    assert [f.unit_size for f in frames] == [112, 112, 1013, 16013]


def test_varints_and_zigzag() -> None:
    for value, size in ((0, 1), (1, 1), (127, 1), (128, 2), (16383, 2), (16384, 3), (2**28 - 1, 4),
                        (2**28, 5), (2**32 - 1, 5)):
        encoded = bs._varint(value)
        assert encoded == _leb(value) and len(encoded) == size == bs._varint_size(value)
        assert bs._read_varint(b"\xaa" + encoded + b"\xbb", 1, "x", 0) == (value, 1 + size)
    assert [bs._zigzag(n) for n in (0, -1, 1, -2, 2, -64, 64)] == [0, 1, 2, 3, 4, 127, 128]
    assert all(bs._unzigzag(bs._zigzag(n)) == n for n in range(-300, 300))
    for bad, message in ((b"\x80\x00", "not minimal"), (b"\xff\x80\x00", "not minimal"),
                         (b"\xff\xff\xff\xff\x10", "exceeds 2"), (b"\x80\x80\x80\x80\x80\x01", "longer than 5"),
                         (b"\x80", "runs past the end"), (b"", "runs past the end")):
        with pytest.raises(BitstreamError, match=message) as err:
            bs._read_varint(b"\x00" + bad, 1, "x", 100)
        assert err.value.offset == 101
    with pytest.raises(ValueError):
        bs._varint(2**32)


def test_example_layout_of_the_spec() -> None:
    """docs/bitstream.md section 7, offsets and bytes."""
    frames = [FrameUnit(0, 0, 5, bytes(16), (bytes(10), bytes(20))),
              FrameUnit(1, 1, 5, bytes(16), (bytes(5),), display=2),
              FrameUnit(2, 3, 5, bytes(16), (bytes(3), bytes(4)), display=1)]
    data = _stream(_header(), frames)
    stream = read_bitstream(data)
    assert [(s.type_name, s.offset, s.size) for s in stream.unit_summaries] == [
        ("frame", 100, 43), ("frame", 143, 17), ("frame", 160, 20), ("index", 180, 22), ("end", 202, 30)]
    assert stream.size == 232 and stream.index.entries == ((0, 100),)
    assert data[100:110].hex(" ") == "01 25 40 05 00 00 00 00 0a 00"
    assert data[143:151].hex(" ") == "01 0b 21 05 00 00 00 02"
    assert data[160:169].hex(" ") == "01 0e 43 05 00 00 00 01 03"


def test_example_layout_of_version_4_still_reads() -> None:
    """The version-4 example of docs/bitstream.md section 7.1: a 4-byte frame_check."""
    check = bytes.fromhex("a1b2c3d4")
    key = _unit(0x01, _frame4(0, 0, (bytes(10), bytes(20)), quality=5, check=check))
    body = (key + _unit(0x01, _frame4(1, _zz(1), (bytes(5),), quality=5, check=check))
            + _unit(0x01, _frame4(3, _zz(-1), (bytes(3), bytes(4)), quality=5, check=check)))
    assert key[:11].hex(" ") == "01 26 40 05 a1 b2 c3 d4 00 0a 00"
    data = _prefix4() + body + _tail(3, [(0, 100)])
    stream = read_bitstream(data)
    assert (stream.format_version, stream.min_reader_version) == (4, 4)
    assert [(s.offset, s.size) for s in stream.unit_summaries] == [(100, 44), (144, 18), (162, 21), (183, 22),
                                                                    (205, 30)]
    assert [(f.display, f.frame_hash, f.segments) for f in stream.frames] == [
        (0, check, (bytes(10), bytes(20))), (2, check, (bytes(5),)), (1, check, (bytes(3), bytes(4)))]
    assert _read_streaming(data)[1:] == list(BitstreamReader(io.BytesIO(data)).units())
    assert bs.salvage(data).frames == tuple(zip((100, 144, 162), stream.frames))
    with pytest.raises(BitstreamError, match="frame unit 1: display 0 is already taken") as err:
        read_bitstream(_prefix4() + key + _unit(0x01, _frame4(1, _zz(-1), check=check)) + _tail(2, [(0, 100)]))
    assert err.value.offset == 144 + 2 + 6  # the display field, after the 4-byte check


def test_example_layout_of_version_3_still_reads() -> None:
    """The version-3 example of docs/bitstream.md section 7.2."""
    frames = [FrameUnit(0, 0, 5, bytes(16), (bytes(10), bytes(20))), FrameUnit(1, 1, 5, bytes(16), (bytes(5),))]
    stream = read_bitstream(_v3_stream(_header(), frames))
    assert [(s.type_name, s.offset, s.size) for s in stream.unit_summaries] == [
        ("frame", 100, 71), ("frame", 171, 42), ("index", 213, 25), ("end", 238, 17)]
    assert stream.size == 255 and stream.index.entries == ((0, 100),)
    assert list(stream.frames) == frames and stream.end == EndUnit(2)


@pytest.mark.parametrize("version, min_reader", [(1, 1), (2, 1), (2, 2), (3, 1), (3, 3), (4, 3)])
def test_version_1_to_3_streams_still_read(version: int, min_reader: int) -> None:
    """Any stream an older reader may read (min_reader_version <= 3) has the old unit layout."""
    frames = _frames(7)
    data = _v3_stream(_header(frame_count=7), frames, version, min_reader)
    stream = read_bitstream(data)
    assert (stream.format_version, stream.min_reader_version) == (version, min_reader)
    assert list(stream.frames) == frames  # 16-byte hashes, display = index
    assert all(f.display == f.index and len(f.frame_hash) == 16 for f in stream.frames)
    assert stream.end == EndUnit(7) and stream.end.digest is None
    assert stream.index.entries == tuple((i, s.offset) for i, s in enumerate(stream.unit_summaries[:7])
                                         if i % 3 == 0)
    assert _read_streaming(data)[1:] == list(BitstreamReader(io.BytesIO(data)).units())
    info = bs.inspect(data)
    assert info["digest"] is None and info["frames"][1]["hash"] == "01" * 16
    assert info["totals"]["decode_order"] == list(range(7)) and info["totals"]["reorder_depth"] == 0


def test_the_version_3_file_of_the_old_codec_reads() -> None:
    data = V3_FILE.read_bytes()
    assert len(data) == 7940
    stream = read_bitstream(V3_FILE)
    assert (stream.format_version, stream.size) == (3, 7940)
    assert len(stream.frames) == 6 == stream.end.frame_count and stream.end.digest is None
    assert [f.display for f in stream.frames] == [f.index for f in stream.frames] == list(range(6))
    assert all(len(f.frame_hash) == 16 for f in stream.frames)
    found = bs.salvage(data)
    assert found.damage == () and found.digest is None
    assert [u for _, u in found.frames] == list(stream.frames)
    text = bs.format_summary(bs.inspect(data))
    assert "format version 3" in text and "displays in decode order: 0-5 (reorder depth 0)" in text
    assert "digest" not in text


def test_frame_count_rewritten_in_header_on_seekable_file(tmp_path) -> None:
    path = tmp_path / "a.mcd"
    with open(path, "wb") as f:
        f.write(b"prefix")  # the stream need not start at byte 0 of the file
        with BitstreamWriter(f, _header(frame_count=0)) as writer:
            for frame in _b_frames([0, 2, 1, 3, 4]):
                writer.write_frame(frame)
        assert writer.header.frame_count == 5
    with open(path, "rb") as f:
        f.seek(6)
        reader = BitstreamReader(f)
        assert reader.header == _header(frame_count=5)
        assert [u.display for _, u in reader.units() if isinstance(u, FrameUnit)] == [0, 2, 1, 3, 4]


def test_non_seekable_write_and_streaming_read() -> None:
    sink = _Sink()
    with BitstreamWriter(sink, _header()) as writer:
        for frame in _frames(5):
            writer.write_frame(frame)
    data = bytes(sink.data)
    assert read_bitstream(data).header.frame_count == 0  # no rewrite possible: stays "unknown"
    header, *units = _read_streaming(data)
    assert header == _header() and [u for _, u in units[:5]] == [_read_back(f) for f in _frames(5)]
    assert units == list(BitstreamReader(io.BytesIO(data)).units())


def test_read_from_os_pipe() -> None:
    data = _stream()
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    with os.fdopen(r, "rb") as pipe:
        reader = BitstreamReader(pipe)
        assert reader.size is None
        units = [u for _, u in reader.units()]
    writer.join()
    assert units[:4] == [_read_back(f) for f in _frames()] and units[-1].frame_count == 4


def test_ancillary_units_are_skipped_anywhere_after_index() -> None:
    data = _stream()
    end = len(data) - 30  # the END unit: 1 + 1 + 24 + 4
    data = data[:end] + _unit(0x80, b"stats") + _unit(0xFF, b"") + data[end:]
    units = [u for _, u in BitstreamReader(io.BytesIO(data)).units()]
    assert units[-3:-1] == [UnknownUnit(0x80, b"stats"), UnknownUnit(0xFF, b"")]
    assert units[-1].frame_count == 4
    assert [s.type_name for s in read_bitstream(data).unit_summaries][-3:] == ["ancillary-0x80", "ancillary-0xff", "end"]


def test_ancillary_units_between_frames_and_long_lengths() -> None:
    big = _unit(0xC0, bytes(300))
    assert big[1:3] == b"\xac\x02"  # 300 as a 2-byte varint
    empty = _unit(0x81, b"")  # 6 bytes
    data = _craft(empty, _unit(0x01, _frame4(0, 0, (b"x",))), big, _unit(0x01, _frame4(1, _zz(1), (b"y",))),
                  _unit(0x01, _frame4(3, _zz(-1))), _tail(3, [(0, _FIRST + len(empty))]))
    units = [u for _, u in BitstreamReader(io.BytesIO(data)).units()]
    assert [type(u).__name__ for u in units] == ["UnknownUnit", "FrameUnit", "UnknownUnit", "FrameUnit",
                                                 "FrameUnit", "IndexUnit", "EndUnit"]
    assert units[2] == UnknownUnit(0xC0, bytes(300))
    assert [(u.index, u.display, u.frame_type, u.segments) for u in units if isinstance(u, FrameUnit)] == [
        (0, 0, 0, (b"x",)), (1, 2, 1, (b"y",)), (2, 1, 3, ())]
    assert _read_streaming(data)[1:] == list(BitstreamReader(io.BytesIO(data)).units())


def test_inspect_is_json_ready(tmp_path) -> None:
    path = tmp_path / "a.mcd"
    frames = _frames(4)
    path.write_bytes(_stream(_header(frame_count=4), frames))
    info = bs.inspect(path)
    json.dumps(info)
    assert info["header"]["model"]["sha256"] == bytes(range(32)).hex()
    assert [f["type"] for f in info["frames"]] == ["key", "inter", "rebuilt", "key"]
    assert [f["hash"] for f in info["frames"]] == [bytes([i]).hex() * CHECK for i in range(4)]
    assert [f["display"] for f in info["frames"]] == [0, 1, 2, 3]
    assert info["digest"] == hashlib.blake2b(b"".join(f.frame_hash for f in frames), digest_size=16).hexdigest()
    assert info["totals"]["frames"] == 4 and info["totals"]["key_frames"] == 2
    assert sum(u["size"] for u in info["units"]) + info["totals"]["header_bytes"] == info["size"] == path.stat().st_size


def test_format_summary_and_stdin(monkeypatch) -> None:
    data = _stream(_header(frame_count=4))
    monkeypatch.setattr("sys.stdin", type("Stdin", (), {"buffer": _Pipe(data)})())
    text = bs.format_summary(bs.inspect("-"))
    assert "64x48 yuv420p, 30000/1001 fps" in text and "mae-v1" in text
    assert text.count("\n") == 7 + 6  # 7 summary lines, column titles, 6 units
    assert "frame dec     2 disp     2 rebuilt    q12  020202 segments 2,4" in text
    assert "displays in decode order: 0-3 (reorder depth 0)" in text
    text = bs.format_summary(bs.inspect(_stream(_header(), _b_frames([0, 4, 2, 1, 3, 5, 8, 6, 7]))))
    assert "displays in decode order: 0 4 2 1 3 5 8 6-7 (reorder depth 3)" in text
    assert "frame dec     1 disp     4 bi-inter" in text and "frame dec     3 disp     1 inter" in text


def test_frame_hash() -> None:
    rng = np.random.default_rng(0)
    y, u, v = (rng.integers(0, 256, s, dtype=np.uint8) for s in ((5, 7), (3, 4), (3, 4)))
    expected = hashlib.blake2b(y.tobytes() + u.tobytes() + v.tobytes(), digest_size=16).digest()
    assert bs.frame_hash(y, u, v) == expected
    big = rng.integers(0, 256, (10, 14), dtype=np.uint8)
    assert bs.frame_hash(big[::2, ::2], u, v) == bs.frame_hash(big[::2, ::2].copy(), u, v)
    with pytest.raises(ValueError):
        bs.frame_hash(y, u[:2], v)
    with pytest.raises(ValueError):
        bs.frame_hash(y.astype(np.int16), u, v)


# --- writer misuse is ValueError ---------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("width", 0), ("height", 16385), ("width", True), ("fps_den", 0), ("frame_count", -1),
    ("pix_fmt", 1), ("color_range", 2), ("color_matrix", 3), ("model_sha256", b"x" * 31),
    ("model_name", ""), ("model_name", "a" * 65), ("model_name", "bad name"), ("model_name", "é"),
    ("extra", b"x" * 65536),
])
def test_bad_header_values_raise_value_error(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        _header(**{field: value})


def test_bad_values_raise_value_error() -> None:
    with pytest.raises(ValueError, match="width"):
        _header(width=16384, height=16384)  # each side fine, too many pixels
    for bad in (dict(gop=0), dict(quality=256), dict(mask_mode=3), dict(mask_ratio_permille=1001),
                dict(patch_size=0), dict(search_range=256), dict(flags=2**16)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            CodingParams(**{**dict(gop=1, quality=1, patch_size=16, search_range=0), **bad})
    base = dict(index=0, frame_type=0, quality=0, frame_hash=bytes(16), segments=())
    for bad in (dict(frame_type=5), dict(quality=255), dict(frame_hash=b"x"), dict(frame_hash=bytes(8)),
                dict(segments=[b""]), dict(segments=(b"",) * 256), dict(flags=256), dict(display=-1),
                dict(display=True)):
        with pytest.raises(ValueError):
            FrameUnit(**{**base, **bad})
    assert FrameUnit(**{**base, "frame_hash": bytes(4)}).frame_hash == bytes(4)  # a v4 frame_check
    assert FrameUnit(**{**base, "index": 7}).display == 7
    assert FrameUnit(**{**base, "index": 7, "display": 3}).display == 3
    assert bs.FRAME_BI_INTER == 3 and bs.FRAME_BI_REBUILT == 4 and bs.MAX_REORDER == 64
    assert {"FRAME_BI_INTER", "FRAME_BI_REBUILT", "MAX_REORDER"} <= set(bs.__all__)


def test_writer_enforces_stream_rules() -> None:
    frames = _frames(3)
    writer = BitstreamWriter(io.BytesIO(), _header(frame_count=2))
    with pytest.raises(ValueError, match="key frame"):
        writer.write_frame(dataclasses.replace(frames[0], frame_type=1))
    with pytest.raises(ValueError, match="expected 0"):
        writer.write_frame(frames[1])
    writer.write_frame(frames[0])
    with pytest.raises(ValueError, match="promised 2"):
        writer.close()
    writer.write_frame(frames[1])
    with pytest.raises(ValueError, match="promised 2"):
        writer.write_frame(frames[2])
    tiny = _header(width=1, height=1)
    with pytest.raises(ValueError, match="65549 bytes exceeds 65548"):
        BitstreamWriter(io.BytesIO(), tiny).write_frame(
            FrameUnit(0, 0, 0, bytes(16), (bytes(tiny.max_unit_length - 5),)))
    BitstreamWriter(io.BytesIO(), tiny).write_frame(FrameUnit(0, 0, 0, bytes(16), (bytes(tiny.max_unit_length - 6),)))
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write_frame(frames[2])


@pytest.mark.parametrize("frame, message", [
    (FrameUnit(1, 1, 0, bytes(4), ()), "16-byte"),
    (FrameUnit(1, 1, 0, bytes(16), (b"",) * 8), "8 segments, a frame holds at most 7"),
    (FrameUnit(1, 1, 0, bytes(16), (), flags=4), "flags 0x04"),
    (FrameUnit(1, 0, 0, bytes(16), (), display=2), "key frame has display 2, it must equal its decode index 1"),
    (FrameUnit(1, 1, 0, bytes(16), (), display=66), "beyond MAX_REORDER 64"),
    (FrameUnit(1, 3, 0, bytes(16), (), display=0), "display 0 is already taken"),
])
def test_writer_enforces_version_4_frame_rules(frame: FrameUnit, message: str) -> None:
    buf = io.BytesIO()
    writer = BitstreamWriter(buf, _header())
    writer.write_frame(FrameUnit(0, 0, 0, bytes(16), ()))
    size = len(buf.getvalue())
    with pytest.raises(ValueError, match=message):
        writer.write_frame(frame)
    assert len(buf.getvalue()) == size  # nothing written
    writer.write_frame(FrameUnit(1, 1, 0, bytes(16), ()))  # and the writer goes on
    writer.close()
    assert len(read_bitstream(buf.getvalue()).frames) == 2


def test_writer_refuses_displays_that_are_not_a_permutation() -> None:
    writer = BitstreamWriter(io.BytesIO(), _header())
    writer.write_frame(FrameUnit(0, 0, 0, bytes(16), ()))
    writer.write_frame(FrameUnit(1, 1, 0, bytes(16), (), display=2))
    with pytest.raises(ValueError, match="not 0..1: display 1 is missing"):
        writer.close()
    writer.write_frame(FrameUnit(2, 3, 0, bytes(16), (), display=1))
    writer.close()
    # A display that can no longer come is refused as soon as that is certain.
    writer = BitstreamWriter(io.BytesIO(), _header())
    writer.write_frame(FrameUnit(0, 0, 0, bytes(16), ()))
    for i in range(1, 65):
        writer.write_frame(FrameUnit(i, 1, 0, bytes(16), (), display=i + 1))
    with pytest.raises(ValueError, match="display 1 is missing: frame 65 was the last"):
        writer.write_frame(FrameUnit(65, 1, 0, bytes(16), (), display=66))
    writer.write_frame(FrameUnit(65, 4, 0, bytes(16), (), display=1))
    writer.close()


def test_exception_in_context_writes_no_end() -> None:
    buf = io.BytesIO()
    with pytest.raises(RuntimeError):
        with BitstreamWriter(buf, _header()) as writer:
            writer.write_frame(_frames(1)[0])
            raise RuntimeError("encoder crashed")
    with pytest.raises(BitstreamError, match="without an END unit"):
        read_bitstream(buf.getvalue())


# --- malformed input is BitstreamError, and only that -------------------------------------


@pytest.mark.parametrize("data", [
    _stream(),
    _stream(_header(), _b_frames([0, 2, 1, 3])),
    _v3_stream(),
], ids=["v4", "v4-b-frames", "v3"])
def test_every_truncation_raises(data: bytes) -> None:
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            read_bitstream(data[:cut])
        with pytest.raises(BitstreamError):
            _read_streaming(data[:cut])


@pytest.mark.parametrize("data", [
    _stream(_header(frame_count=3), _frames(3)),
    _stream(_header(frame_count=3), _b_frames([0, 2, 1])),
    _v3_stream(_header(frame_count=3), _frames(3)),
], ids=["v4", "v4-b-frames", "v3"])
def test_every_single_bit_flip_raises(data: bytes) -> None:
    for i in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                read_bitstream(bytes(flipped))


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _parses_or_raises(data)
    _parses_or_raises(bs.SIGNATURE + data)


@FAST
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_after_a_valid_header(tail: bytes, v3: bool) -> None:
    _parses_or_raises((_prefix3() if v3 else _prefix()) + tail)


_unit_types = st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFF])


@FAST
@given(st.lists(st.tuples(_unit_types, st.binary(max_size=60)), max_size=6), st.booleans())
def test_arbitrary_units_with_valid_crcs(units: list[tuple[int, bytes]], frame_like: bool) -> None:
    """Payloads that pass the CRC reach the per-type parsers (version 4)."""
    body = b"".join(_unit(t, _frame4()[:6] + p if frame_like and t == 1 else p) for t, p in units)
    _parses_or_raises(_craft(body))
    _parses_or_raises(_craft(body, _tail(0, [])))


@FAST
@given(st.lists(st.tuples(_unit_types, st.binary(max_size=60)), max_size=6), st.booleans())
def test_arbitrary_version_3_units_with_valid_crcs(units: list[tuple[int, bytes]], frame_like: bool) -> None:
    body = b"".join(_unit3(t, _frame3(0)[:8] + p if frame_like and t == 1 else p) for t, p in units)
    _parses_or_raises(_craft3(body))
    _parses_or_raises(_craft3(body, _tail3(0, [])))


@FAST
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3), st.integers(0, 200),
                          st.lists(st.binary(max_size=5), max_size=8)), max_size=5))
def test_arbitrary_version_4_frame_fields(frames: list[tuple[int, int, int, list[bytes]]]) -> None:
    """Frame types, flags, display fields and segment counts, valid or not, with valid CRCs."""
    body = b"".join(_unit(0x01, _frame4(t, d, tuple(s[:7]), flags=f)) for t, f, d, s in frames)
    _parses_or_raises(_craft(body, _tail(len(frames), [])))


def test_huge_dimensions_fail_fast() -> None:
    data = _stream()
    start = time.perf_counter()
    for width, height, offset in ((100000, 100000, 16), (16384, 16384, 16), (64, 0, 20)):
        bad = _patch_header(_patch_header(data, 16, ">I", width), 20, ">I", height)
        with pytest.raises(BitstreamError, match="sequence header") as err:
            read_bitstream(bad)
        assert err.value.offset == offset
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("data", [_stream(_header(), _frames(2)), _v3_stream(_header(), _frames(2))],
                         ids=["v5", "v3"])
def test_huge_frame_count_fails_fast(data: bytes) -> None:
    bad = _patch_header(data, 32, ">Q", 2**40)
    start = time.perf_counter()
    with pytest.raises(BitstreamError, match="frame_count") as err:
        read_bitstream(bad)
    assert err.value.offset == 32
    with pytest.raises(BitstreamError, match="frame_count"):
        _read_streaming(bad)  # size unknown: caught at END instead, still without looping
    assert time.perf_counter() - start < 0.5


def test_frame_count_fit_uses_the_smallest_units_of_the_layout() -> None:
    """A version-5 frame takes at least 12 bytes, INDEX + END at least 40 (docs section 5.6)."""
    tiny = _unit(0x01, _frame4(0, 0))
    assert len(tiny) == 12 and len(_tail(0, [])) == 40
    body = tiny + b"".join(_unit(0x01, _frame4(1, 0)) for _ in range(2))
    data = _patch_header(_craft(body, _tail(3, [(0, len(_prefix()))])), 32, ">Q", 3)
    assert len(read_bitstream(data).frames) == 3
    # 88 bytes follow the header: 4 frames of 12 and a tail of 40 would fit (the END check
    # then finds 3), 5 cannot.
    with pytest.raises(BitstreamError, match="header's frame_count is 4, stream has 3"):
        read_bitstream(_patch_header(data, 32, ">Q", 4))
    with pytest.raises(BitstreamError, match="frame_count 5 cannot fit"):
        read_bitstream(_patch_header(data, 32, ">Q", 5))


def test_newer_min_reader_version_refused() -> None:
    data = _patch_header(_stream(), 8, ">H", 7)
    assert len(read_bitstream(data).frames) == 4  # newer writer, version-5 readers allowed
    with pytest.raises(BitstreamError, match="stream needs reader version 6, this is 5"):
        read_bitstream(_patch_header(data, 10, ">H", 6))
    with pytest.raises(BitstreamError, match="min_reader_version"):
        read_bitstream(_patch_header(data, 10, ">H", 8))  # above format_version


@pytest.mark.parametrize("craft, unit, tail", [(_craft, _unit, _tail), (_craft3, _unit3, _tail3)],
                         ids=["v5", "v3"])
def test_unknown_critical_unit_rejected(craft, unit, tail) -> None:
    for unit_type in (0x00, 0x03, 0x7E):
        with pytest.raises(BitstreamError, match=f"unknown critical unit type 0x{unit_type:02x} .* newer mcodec"):
            read_bitstream(craft(unit(unit_type, b"future"), tail(0, [])))


@pytest.mark.parametrize("data", [_stream(), _v3_stream()], ids=["v5", "v3"])
def test_trailing_garbage_after_end_rejected(data: bytes) -> None:
    data = data + b"\x00"
    with pytest.raises(BitstreamError, match="trailing data") as err:
        read_bitstream(data)
    assert err.value.offset == len(data) - 1
    with pytest.raises(BitstreamError, match="trailing data"):
        _read_streaming(data)


@pytest.mark.parametrize("v3", [False, True], ids=["v5", "v3"])
def test_unit_length_past_end_rejected_before_reading(v3: bool) -> None:
    header = _header()
    claimed = header.max_unit_length  # allowed for this header, but the stream is tiny
    head = struct.pack(">BI", 0x01, claimed) if v3 else b"\x01" + _leb(claimed)
    data = (_craft3 if v3 else _craft)(head + bytes(100))
    source = _CountingBytes(data)
    reader = BitstreamReader(source)
    with pytest.raises(BitstreamError, match="runs past the end") as err:
        list(reader.units())
    assert err.value.offset == _header_end(data) + 1
    assert source.largest_read < 1000
    over = struct.pack(">BI", 0x01, claimed + 1) if v3 else b"\x01" + _leb(claimed + 1)
    with pytest.raises(BitstreamError, match="frame unit 0: length"):
        _read_streaming((_craft3 if v3 else _craft)(over))  # over the limit: no read at all


_FIRST = 100  # offset of the first unit of a crafted stream (header of `_header()`)
_KEY = _unit(0x01, _frame4(0, 0, (b"k",)))  # frame 0, 13 bytes
_BASE1 = _FIRST + len(_KEY) + 2  # payload of a second frame unit with a 1-byte length


@pytest.mark.parametrize("units, message, offset", [
    # unit framing
    ((_unit(0x01, _frame4(), length=b"\x87\x00"),), "frame unit 0: length: varint is not minimal", _FIRST + 1),
    ((_unit(0x01, _frame4(), length=b"\xff\xff\xff\xff\x1f"),), "varint 8589934591 exceeds", _FIRST + 1),
    ((_unit(0x01, _frame4(), length=b"\x80\x80\x80\x80\x80\x00"),), "longer than 5 bytes", _FIRST + 1),
    ((_unit(0x01, b"\x00" * 5),), "frame unit 0: length 5 not in 6..", _FIRST + 1),
    ((_unit(0x7F, bytes(8)),), "end unit: length 8 not in 24..24", _FIRST + 1),
    ((_unit(0x02, bytes(5)),), "index unit: length 5", _FIRST + 1),
    # one frame
    ((_unit(0x01, _frame4(1)),), "frame unit 0: the first frame must be a key frame", _FIRST + 2),
    ((_unit(0x01, _frame4(0, 1)),), "key frame has display 1, it must equal its decode index 0", _FIRST + 7),
    ((_KEY, _unit(0x01, _frame4(0, 0))), "frame unit 1: key frame has display 0", _BASE1 + 5),
    ((_KEY, _unit(0x01, _frame4(0, 5))), "frame unit 1: key frame has display 5", _BASE1 + 5),
    ((_unit(0x01, _frame4(5)),), "frame unit 0: frame_type must be 0..4, got 5", _FIRST + 2),
    ((_unit(0x01, _frame4(7)),), "frame_type must be 0..4, got 7", _FIRST + 2),
    ((_unit(0x01, _frame4(quality=255)),), "quality must be", _FIRST + 3),
    ((_unit(0x01, _frame4(display=b"\x80\x00")),), "frame unit 0: display: varint is not minimal", _FIRST + 7),
    ((_unit(0x01, _frame4(display=b"\x80")),), "display: varint runs past the end", _FIRST + 7),
    ((_KEY, _unit(0x01, _frame4(1, _zz(-2)))), "frame unit 1: display -1 is negative", _BASE1 + 5),
    ((_KEY, _unit(0x01, _frame4(1, _zz(65)))), "display 66 is \\+65 from decode index 1, beyond MAX_REORDER 64",
     _BASE1 + 5),
    ((_KEY, _unit(0x01, _frame4(1, _zz(-1)))), "display 0 is already taken", _BASE1 + 5),
    # segments
    ((_unit(0x01, _frame4(0, 0, n_segments=3, lengths=b"\x0a\x0a") + bytes(5)),),
     "frame unit 0: segment lengths add up to 20 bytes, payload holds 5", _FIRST + 8),
    ((_unit(0x01, _frame4(0, 0, n_segments=7)),), "segment 0 length: varint runs past the end", _FIRST + 8),
    ((_unit(0x01, _frame4(0, 0, n_segments=2, lengths=b"\x81\x00") + bytes(5)),),
     "segment 0 length: varint is not minimal", _FIRST + 8),
    ((_unit(0x01, _frame4(0, 0, n_segments=0) + b"abc"),), "no segments, but 3 bytes follow", _FIRST + 8),
    # stream structure
    ((_unit(0x02, struct.pack(">I", 0)), _unit(0x02, struct.pack(">I", 0))), "second index unit", _FIRST + 10),
    ((_unit(0x7F, bytes(24)),), "no index unit before it", _FIRST),
    ((_tail(1, []),), "end unit: frame_count 1, stream has 0", _FIRST + 12),
    ((_unit(0x02, struct.pack(">I", 0)), _unit(0x01, _frame4())), "frame after the index", _FIRST + 10),
    ((_KEY, _tail(1, [(0, 99)])), r"index unit: entry 0 is \(0, 99\)", _FIRST + len(_KEY) + 2 + 4),
    ((_KEY, _tail(1, [])), "0 entries, the stream has 1 key frames", _FIRST + len(_KEY) + 2),
    ((_KEY, _unit(0x01, _frame4(1, _zz(1))), _tail(2, [(0, _FIRST)])),
     "end unit: the displays of the 2 frames are not 0..1: display 1 is missing", _FIRST + len(_KEY) + 12 + 22),
])
def test_structural_errors_name_the_unit(units: tuple[bytes, ...], message: str, offset: int) -> None:
    data = _craft(*units)
    assert _header_end(data) == _FIRST
    for read in (read_bitstream, _read_streaming):
        with pytest.raises(BitstreamError, match=message) as err:
            read(data)
        assert err.value.offset == offset and "byte offset" in str(err.value)


def test_a_display_that_can_no_longer_come_is_refused_at_once() -> None:
    """Displays 0, 2, 3, ..., 66: after frame 65 no frame may carry display 1."""
    body, _ = _crafted_frames([0, *range(2, 67)], [0] + [1] * 65)
    data = _craft(body)
    for read in (read_bitstream, _read_streaming):
        with pytest.raises(BitstreamError, match="frame unit 65: display 1 is missing: frame 65 was the last") as err:
            read(data)
        assert err.value.offset == _FIRST + 65 * 13 + 2 + 5  # its display field; every unit is 13 bytes
    ok, _ = _crafted_frames([0, *range(2, 66), 1], [0] + [1] * 64 + [4])
    assert len(read_bitstream(_craft(ok)).frames) == 66


@pytest.mark.parametrize("units, message", [
    ((_unit3(0x01, _frame3(1)),), "frame unit 0: frame_index is 1, expected 0"),
    ((_unit3(0x01, _frame3(0, frame_type=1)),), "first frame must be a key frame"),
    ((_unit3(0x01, _frame3(0, frame_type=3)),), "frame_type must be 0..2 in a version 1-3 stream, got 3"),
    ((_unit3(0x01, _frame3(0)), _unit3(0x01, _frame3(1, frame_type=4))), "frame unit 1: frame_type must be 0..2"),
    ((_unit3(0x01, _frame3(0, frame_type=5)),), "frame_type must be 0..2"),
    ((_unit3(0x01, _frame3(0, segments=(b"ab",))[:-1]),), "segment lengths add up to 2"),
    ((_unit3(0x01, _frame3(0)[:23] + b"\x02"),), "2 segment lengths run past"),
    ((_unit3(0x02, struct.pack(">I", 0)), _unit3(0x02, struct.pack(">I", 0))), "second index unit"),
    ((_unit3(0x7F, bytes(8)),), "no index unit before it"),
    ((_unit3(0x7F, bytes(24)),), "end unit: length 24 not in 8..8"),
    ((_tail3(1, []),), "end unit: frame_count 1, stream has 0"),
    ((_unit3(0x02, struct.pack(">I", 0)), _unit3(0x01, _frame3(0))), "frame after the index"),
    ((_unit3(0x01, _frame3(0)), _tail3(1, [(0, 99)])), r"index unit: entry 0 is \(0, 99\)"),
    ((_unit3(0x01, _frame3(0)), _tail3(1, [])), "0 entries, the stream has 1 key frames"),
    ((_unit3(0x02, bytes(5)),), "index unit: length 5"),
    ((_unit(0x01, _frame4()), _tail(1, [(0, 100)])), "length"),  # version-4 units in a version-3 stream
])
def test_version_3_structural_errors_name_the_unit(units: tuple[bytes, ...], message: str) -> None:
    with pytest.raises(BitstreamError, match=message) as err:
        read_bitstream(_craft3(*units))
    assert err.value.offset is not None and "byte offset" in str(err.value)


def test_bi_frame_types_are_refused_in_a_version_3_stream_at_their_offset() -> None:
    data = _craft3(_unit3(0x01, _frame3(0)), _unit3(0x01, _frame3(1, frame_type=bs.FRAME_BI_INTER)))
    with pytest.raises(BitstreamError, match="frame unit 1: frame_type must be 0..2 in a version 1-3 stream, "
                                             "got 3") as err:
        read_bitstream(data)
    assert err.value.offset == _FIRST + 33 + 5 + 4


def test_frame_count_mismatch_with_header() -> None:
    data = _patch_header(_craft(_KEY, _unit(0x01, _frame4(1))), 32, ">Q", 1)
    with pytest.raises(BitstreamError, match="frame unit 1: more frames than the header's frame_count 1"):
        list(BitstreamReader(_Pipe(data)).units())
    data = _patch_header(_craft3(_unit3(0x01, _frame3(0)), _unit3(0x01, _frame3(1))), 32, ">Q", 1)
    with pytest.raises(BitstreamError, match="frame unit 1: more frames than the header's frame_count 1"):
        list(BitstreamReader(_Pipe(data)).units())


def test_header_field_errors_point_at_the_field() -> None:
    data = _stream()
    for offset, fmt, value in ((16 + 26, ">B", 7), (16 + 27, ">I", 0), (16 + 24, ">B", 1)):
        with pytest.raises(BitstreamError) as err:
            read_bitstream(_patch_header(data, offset, fmt, value))
        assert err.value.offset == offset
    with pytest.raises(BitstreamError, match="bad signature"):
        read_bitstream(b"\x89PNG\r\n\x1a\n" + data[8:])
    with pytest.raises(BitstreamError, match="cannot open"):
        read_bitstream("/nonexistent/a.mcd")


# --- salvage ----------------------------------------------------------------------------------


_GOPS = [0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11]  # key frames at 0, 4, 8; B-frames between
_GOP_TYPES = [0, 1, 4, 1, 0, 1, 3, 1, 0, 1, 4, 1]


def _salvage_stream() -> tuple[bytes, list[FrameUnit], list[int]]:
    frames = _b_frames(_GOPS, _GOP_TYPES)
    buf = io.BytesIO()
    with BitstreamWriter(buf, _header(frame_count=len(frames))) as writer:
        offsets = [writer.write_frame(f) for f in frames]
    return buf.getvalue(), frames, offsets


def test_salvage_of_an_intact_stream_keeps_everything() -> None:
    data, frames, offsets = _salvage_stream()
    found = bs.salvage(data)
    assert found.damage == () and found.frame_count == 12
    assert found.frames == tuple((o, _read_back(f)) for o, f in zip(offsets, frames))
    assert found.digest == read_bitstream(data).end.digest == hashlib.blake2b(
        b"".join(f.frame_hash for f in frames), digest_size=16).digest()


@pytest.mark.parametrize("damaged, kept", [
    (1, [0, 4, 5, 6, 7, 8, 9, 10, 11]),   # frames 1-3 lost: 2, 3 cannot be placed
    (4, [0, 1, 2, 3, 8, 9, 10, 11]),      # a key frame: its whole GOP
    (6, [0, 1, 2, 3, 4, 5, 8, 9, 10, 11]),
    (0, [4, 5, 6, 7, 8, 9, 10, 11]),
    (11, list(range(11))),
])
def test_salvage_skips_unplaceable_frames_until_the_next_key_frame(damaged: int, kept: list[int]) -> None:
    data, frames, offsets = _salvage_stream()
    bad = bytearray(data)
    bad[offsets[damaged] + 5] ^= 0x40  # inside the payload: its CRC fails
    found = bs.salvage(bytes(bad))
    assert [(u.index, u.display) for _, u in found.frames] == [(i, _GOPS[i]) for i in kept]
    assert found.frames == tuple((offsets[i], _read_back(frames[i])) for i in kept)
    assert "CRC mismatch" in str(found.damage[0])
    skipped = [e for e in found.damage if "cannot be placed" in str(e)]
    next_key = next((k for k in (4, 8) if k > damaged), 12)
    assert [e.offset for e in skipped] == offsets[damaged + 1:next_key]
    assert all(str(e).startswith("frame unit: not a key frame, cannot be placed after damage") for e in skipped)
    assert len(found.damage) == 1 + len(skipped)
    assert found.frame_count == 12 and found.digest == read_bitstream(data).end.digest


def test_salvage_of_a_damaged_unit_length() -> None:
    """A damaged length varint: resync at the next CRC-valid unit, then wait for a key frame."""
    data, _, offsets = _salvage_stream()
    bad = bytearray(data)
    bad[offsets[5] + 1] = 0x80  # length varint now continues into the payload
    found = bs.salvage(bytes(bad))
    assert [u.index for _, u in found.frames] == [0, 1, 2, 3, 4, 8, 9, 10, 11]
    assert len(found.damage) == 1 + 2


def test_salvage_of_every_truncation() -> None:
    data, frames, offsets = _salvage_stream()
    ends = [*offsets[1:], offsets[-1] + frames[-1].unit_size]
    for n in range(_header_end(data), len(data)):
        found = bs.salvage(data[:n])
        assert [u.index for _, u in found.frames] == [i for i, e in enumerate(ends) if e <= n], n
        assert found.damage and found.frame_count == 12 and found.digest is None
        assert "truncated" in str(found.damage[-1]) or "runs past the end" in str(found.damage[-1])


def test_salvage_places_key_frames_by_display_and_refuses_duplicates() -> None:
    data, _, offsets = _salvage_stream()
    # Drop the CRC-valid units of frames 4-7 cleanly: key frame 8 is placed by its display.
    cut = data[:offsets[4]] + data[offsets[8]:]
    found = bs.salvage(cut)
    assert [(u.index, u.display) for _, u in found.frames] == [(i, _GOPS[i]) for i in (0, 1, 2, 3, 8, 9, 10, 11)]
    # A spliced copy of an earlier GOP: its key frame goes backwards, its other frames wait.
    dup = data[:offsets[8]] + data[offsets[0]:offsets[4]] + data[offsets[8]:]
    found = bs.salvage(dup)
    assert [u.index for _, u in found.frames] == list(range(12))
    assert "out of order" in str(found.damage[0]) and len(found.damage) == 4
    # Frame unit 1 twice: the copy counts as decode 2 (display 3), the real unit 2 then
    # claims display 2 again and is refused; frame 3 waits for key frame 4.
    twice = data[:offsets[2]] + data[offsets[1]:offsets[2]] + data[offsets[2]:]
    found = bs.salvage(twice)
    assert [(u.index, u.display) for _, u in found.frames] == [(0, 0), (1, 2), (2, 3)] + [
        (i, _GOPS[i]) for i in range(4, 12)]
    assert "frame unit 3: display 2 is already taken" in str(found.damage[0]) and len(found.damage) == 2


def test_salvage_of_a_version_3_stream() -> None:
    frames = _frames(7)
    data = _v3_stream(_header(frame_count=7), frames)
    offsets = [s.offset for s in read_bitstream(data).unit_summaries[:7]]
    bad = bytearray(data)
    bad[offsets[2] + 12] ^= 1
    found = bs.salvage(bytes(bad))
    assert [u for _, u in found.frames] == [f for f in frames if f.index != 2]  # indexes are explicit
    assert len(found.damage) == 1 and found.digest is None


def test_salvage_resync_survives_random_damage() -> None:
    data, frames, _ = _salvage_stream()
    rng = random.Random(4)
    for _ in range(200):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            bad[rng.randrange(_header_end(data), len(data))] = rng.getrandbits(8)
        found = bs.salvage(bytes(bad))
        kept = [u.index for _, u in found.frames]
        assert kept == sorted(set(kept))
        for _, u in found.frames:
            assert _read_back(frames[u.index]) == u
