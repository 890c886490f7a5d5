"""The mcodec container format (docs/bitstream.md): round trips, and that every
malformed input raises BitstreamError and nothing else.

Streams are generated here; `_unit` and `_patch_header` encode independently of
the implementation, following the spec, to craft malformed ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
import threading
import time
import zlib
from fractions import Fraction

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


def _header(**overrides: object) -> SequenceHeader:
    fields: dict = dict(
        width=64, height=48, fps_num=30000, fps_den=1001, frame_count=0,
        coding=CodingParams(gop=3, quality=5, patch_size=16, search_range=8),
        model_sha256=bytes(range(32)), model_name="mae-v1",
    )
    return SequenceHeader(**{**fields, **overrides})


def _frames(count: int = 4) -> list[FrameUnit]:
    """Key, inter, rebuilt, key...; segment shapes vary (none, empty, several)."""
    out = []
    for i in range(count):
        segments = tuple(bytes([i, j]) * (j + 1) for j in range(i % 3)) + ((b"",) if i == 1 else ())
        out.append(FrameUnit(i, (0, 1, 2)[i % 3], 10 + i, bytes([i]) * 16, segments, flags=i))
    return out


def _stream(header: SequenceHeader | None = None, frames: list[FrameUnit] | None = None) -> bytes:
    buf = io.BytesIO()
    with BitstreamWriter(buf, header or _header()) as writer:
        for frame in _frames() if frames is None else frames:
            writer.write_frame(frame)
    return buf.getvalue()


def _header_end(data: bytes) -> int:
    """Offset of the first unit: 16 + header_length + 4."""
    return 16 + struct.unpack_from(">I", data, 12)[0] + 4


def _unit(unit_type: int, payload: bytes) -> bytes:
    head = struct.pack(">BI", unit_type, len(payload))
    return head + payload + struct.pack(">I", zlib.crc32(head + payload))


def _frame_payload(index: int, frame_type: int = 0, segments: tuple[bytes, ...] = ()) -> bytes:
    lengths = struct.pack(f">{len(segments)}I", *map(len, segments))
    return struct.pack(">IBBB16sB", index, frame_type, 0, 0, bytes(16), len(segments)) + lengths + b"".join(segments)


def _tail(frames: int, key_offsets: list[tuple[int, int]]) -> bytes:
    """INDEX + END for a crafted stream."""
    entries = b"".join(struct.pack(">IQ", i, o) for i, o in key_offsets)
    return _unit(0x02, struct.pack(">I", len(key_offsets)) + entries) + _unit(0x7F, struct.pack(">Q", frames))


def _patch_header(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite a field at absolute `offset` and fix the header CRC."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    end = _header_end(data)
    struct.pack_into(">I", out, end - 4, zlib.crc32(out[8:end - 4]))
    return bytes(out)


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


def _parses_or_raises(data: bytes) -> None:
    """Both sized and streaming reads either succeed or raise BitstreamError, alike."""
    outcomes = []
    for read in (read_bitstream, _read_streaming):
        try:
            read(data)
            outcomes.append(True)
        except BitstreamError:
            outcomes.append(False)
    assert outcomes[0] == outcomes[1]


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
    # A coding flag needs a version-2 reader (version 1 ignored the then-reserved flags).
    assert (stream.format_version, stream.min_reader_version) == (3, 2)
    assert stream.frames == () and stream.index == IndexUnit(()) and stream.end == EndUnit(0)


def test_stream_without_coding_flags_stays_readable_by_version_1() -> None:
    stream = read_bitstream(_stream(_header(), []))
    assert stream.header.coding.flags == 0
    assert (stream.format_version, stream.min_reader_version) == (3, 1)


def test_loop_filter_flag_needs_a_version_3_reader() -> None:
    coding = CodingParams(gop=1, quality=1, patch_size=16, search_range=0,
                          flags=bs.CODING_FLAG_OBMC | bs.CODING_FLAG_LOOPFILTER)
    stream = read_bitstream(_stream(dataclasses.replace(_header(), coding=coding), []))
    assert stream.header.coding == coding
    assert (stream.format_version, stream.min_reader_version) == (3, 3)


def test_unknown_coding_flag_bits_are_refused_with_their_offset() -> None:
    with pytest.raises(ValueError, match="unknown coding-tool bits 0x0008"):
        CodingParams(gop=1, quality=1, patch_size=16, search_range=0, flags=0x000F)
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
    assert [u for _, u in units[:7]] == frames
    assert [o for o, _ in units[:7]] == offsets
    assert units[7][1] == IndexUnit(tuple((i, offsets[i]) for i in (0, 3, 6)))
    assert units[8][1] == EndUnit(7)
    assert reader.position == reader.size == len(buf.getvalue())


def test_example_layout_of_the_spec() -> None:
    """docs/bitstream.md section 7, byte for byte in offsets."""
    frames = [FrameUnit(0, 0, 5, bytes(16), (bytes(10), bytes(20))), FrameUnit(1, 1, 5, bytes(16), (bytes(5),))]
    stream = read_bitstream(_stream(_header(), frames))
    assert [(s.type_name, s.offset, s.size) for s in stream.unit_summaries] == [
        ("frame", 100, 71), ("frame", 171, 42), ("index", 213, 25), ("end", 238, 17)]
    assert stream.size == 255 and stream.index.entries == ((0, 100),)


def test_frame_count_rewritten_in_header_on_seekable_file(tmp_path) -> None:
    path = tmp_path / "a.mcd"
    with open(path, "wb") as f:
        f.write(b"prefix")  # the stream need not start at byte 0 of the file
        with BitstreamWriter(f, _header(frame_count=0)) as writer:
            for frame in _frames(5):
                writer.write_frame(frame)
        assert writer.header.frame_count == 5
    with open(path, "rb") as f:
        f.seek(6)
        reader = BitstreamReader(f)
        assert reader.header == _header(frame_count=5)
        assert sum(isinstance(u, FrameUnit) for _, u in reader.units()) == 5


def test_non_seekable_write_and_streaming_read() -> None:
    sink = _Sink()
    with BitstreamWriter(sink, _header()) as writer:
        for frame in _frames(5):
            writer.write_frame(frame)
    data = bytes(sink.data)
    assert read_bitstream(data).header.frame_count == 0  # no rewrite possible: stays "unknown"
    header, *units = _read_streaming(data)
    assert header == _header() and [u for _, u in units[:5]] == _frames(5)
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
    assert units[:4] == _frames() and units[-1] == EndUnit(4)


def test_ancillary_units_are_skipped_anywhere_after_index() -> None:
    data = _stream()
    end = len(data) - 17
    data = data[:end] + _unit(0x80, b"stats") + _unit(0xFF, b"") + data[end:]
    units = [u for _, u in BitstreamReader(io.BytesIO(data)).units()]
    assert units[-3:] == [UnknownUnit(0x80, b"stats"), UnknownUnit(0xFF, b""), EndUnit(4)]
    assert [s.type_name for s in read_bitstream(data).unit_summaries][-3:] == ["ancillary-0x80", "ancillary-0xff", "end"]


def test_inspect_is_json_ready(tmp_path) -> None:
    path = tmp_path / "a.mcd"
    path.write_bytes(_stream(_header(frame_count=4)))
    info = bs.inspect(path)
    json.dumps(info)
    assert info["header"]["model"]["sha256"] == bytes(range(32)).hex()
    assert [f["type"] for f in info["frames"]] == ["key", "inter", "rebuilt", "key"]
    assert info["totals"]["frames"] == 4 and info["totals"]["key_frames"] == 2
    assert sum(u["size"] for u in info["units"]) + info["totals"]["header_bytes"] == info["size"] == path.stat().st_size


def test_format_summary_and_stdin(monkeypatch) -> None:
    data = _stream(_header(frame_count=4))
    monkeypatch.setattr("sys.stdin", type("Stdin", (), {"buffer": _Pipe(data)})())
    text = bs.format_summary(bs.inspect("-"))
    assert "64x48 yuv420p, 30000/1001 fps" in text and "mae-v1" in text
    assert text.count("\n") == 5 + 6  # 5 summary lines, column titles, 6 units
    assert "rebuilt q12  " + "02" * 16 + " segments 2,4" in text


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
    for bad in (dict(frame_type=3), dict(quality=255), dict(frame_hash=b"x"), dict(segments=[b""]),
                dict(segments=(b"",) * 256), dict(flags=256)):
        with pytest.raises(ValueError):
            FrameUnit(**{**dict(index=0, frame_type=0, quality=0, frame_hash=bytes(16), segments=()), **bad})


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
    with pytest.raises(ValueError, match="exceeds"):
        BitstreamWriter(io.BytesIO(), _header(width=1, height=1)).write_frame(
            FrameUnit(0, 0, 0, bytes(16), (bytes(65536),)))
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write_frame(frames[2])


def test_exception_in_context_writes_no_end() -> None:
    buf = io.BytesIO()
    with pytest.raises(RuntimeError):
        with BitstreamWriter(buf, _header()) as writer:
            writer.write_frame(_frames(1)[0])
            raise RuntimeError("encoder crashed")
    with pytest.raises(BitstreamError, match="without an END unit"):
        read_bitstream(buf.getvalue())


# --- malformed input is BitstreamError, and only that -------------------------------------


def test_every_truncation_raises() -> None:
    data = _stream()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            read_bitstream(data[:cut])
        with pytest.raises(BitstreamError):
            _read_streaming(data[:cut])


def test_every_single_bit_flip_raises() -> None:
    data = _stream(_header(frame_count=3), _frames(3))
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
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_a_valid_header(tail: bytes) -> None:
    _parses_or_raises(_stream(_header(), [])[:-30] + tail)


_unit_types = st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFF])


@FAST
@given(st.lists(st.tuples(_unit_types, st.binary(max_size=60)), max_size=6), st.booleans())
def test_arbitrary_units_with_valid_crcs(units: list[tuple[int, bytes]], frame_like: bool) -> None:
    """Payloads that pass the CRC reach the per-type parsers."""
    body = b"".join(_unit(t, _frame_payload(0)[:8] + p if frame_like and t == 1 else p) for t, p in units)
    _parses_or_raises(_stream(_header(), [])[:-30] + body)
    _parses_or_raises(_stream(_header(), [])[:-30] + body + _tail(0, []))


def _craft(*units: bytes) -> bytes:
    """A valid header (frame_count 0) followed by `units`."""
    return _stream(_header(), [])[:-30] + b"".join(units)


def test_huge_dimensions_fail_fast() -> None:
    data = _stream()
    start = time.perf_counter()
    for width, height, offset in ((100000, 100000, 16), (16384, 16384, 16), (64, 0, 20)):
        bad = _patch_header(_patch_header(data, 16, ">I", width), 20, ">I", height)
        with pytest.raises(BitstreamError, match="sequence header") as err:
            read_bitstream(bad)
        assert err.value.offset == offset
    assert time.perf_counter() - start < 0.5


def test_huge_frame_count_fails_fast() -> None:
    bad = _patch_header(_stream(_header(), _frames(2)), 32, ">Q", 2**40)
    start = time.perf_counter()
    with pytest.raises(BitstreamError, match="frame_count") as err:
        read_bitstream(bad)
    assert err.value.offset == 32
    with pytest.raises(BitstreamError, match="frame_count"):
        _read_streaming(bad)  # size unknown: caught at END instead, still without looping
    assert time.perf_counter() - start < 0.5


def test_newer_min_reader_version_refused() -> None:
    data = _patch_header(_stream(), 8, ">H", 5)
    assert len(read_bitstream(data).frames) == 4  # newer writer, old readers allowed
    with pytest.raises(BitstreamError, match="stream needs reader version 4, this is 3"):
        read_bitstream(_patch_header(data, 10, ">H", 4))
    with pytest.raises(BitstreamError, match="min_reader_version"):
        read_bitstream(_patch_header(data, 10, ">H", 6))  # above format_version


def test_unknown_critical_unit_rejected() -> None:
    for unit_type in (0x00, 0x03, 0x7E):
        with pytest.raises(BitstreamError, match=f"unknown critical unit type 0x{unit_type:02x} .* newer mcodec"):
            read_bitstream(_craft(_unit(unit_type, b"future"), _tail(0, [])))


def test_trailing_garbage_after_end_rejected() -> None:
    data = _stream() + b"\x00"
    with pytest.raises(BitstreamError, match="trailing data") as err:
        read_bitstream(data)
    assert err.value.offset == len(data) - 1
    with pytest.raises(BitstreamError, match="trailing data"):
        _read_streaming(data)


def test_unit_length_past_end_rejected_before_reading() -> None:
    header = _header()
    claimed = header.max_unit_length  # allowed for this header, but the stream is tiny
    data = _craft(struct.pack(">BI", 0x01, claimed) + bytes(100))
    source = _CountingBytes(data)
    reader = BitstreamReader(source)
    with pytest.raises(BitstreamError, match="runs past the end") as err:
        list(reader.units())
    assert err.value.offset == _header_end(data) + 1
    assert source.largest_read < 1000
    with pytest.raises(BitstreamError, match="frame unit 0: length"):
        _read_streaming(_craft(struct.pack(">BI", 0x01, claimed + 1)))  # over the limit: no read at all


@pytest.mark.parametrize("units, message", [
    ((_unit(0x01, _frame_payload(1)),), "frame unit 0: frame_index is 1, expected 0"),
    ((_unit(0x01, _frame_payload(0, frame_type=1)),), "first frame must be a key frame"),
    ((_unit(0x01, _frame_payload(0, frame_type=3)),), "frame_type must be"),
    ((_unit(0x01, _frame_payload(0, segments=(b"ab",))[:-1]),), "segment lengths add up to 2"),
    ((_unit(0x01, _frame_payload(0)[:23] + b"\x02"),), "2 segment lengths run past"),
    ((_unit(0x02, struct.pack(">I", 0)), _unit(0x02, struct.pack(">I", 0))), "second index unit"),
    ((_unit(0x7F, bytes(8)),), "no index unit before it"),
    ((_tail(1, []),), "end unit: frame_count 1, stream has 0"),
    ((_unit(0x02, struct.pack(">I", 0)), _unit(0x01, _frame_payload(0))), "frame after the index"),
    ((_unit(0x01, _frame_payload(0)), _tail(1, [(0, 99)])), r"index unit: entry 0 is \(0, 99\)"),
    ((_unit(0x01, _frame_payload(0)), _tail(1, [])), "0 entries, the stream has 1 key frames"),
    ((_unit(0x02, bytes(5)),), "index unit: length 5"),
])
def test_structural_errors_name_the_unit(units: tuple[bytes, ...], message: str) -> None:
    with pytest.raises(BitstreamError, match=message) as err:
        read_bitstream(_craft(*units))
    assert err.value.offset is not None and "byte offset" in str(err.value)


def test_frame_count_mismatch_with_header() -> None:
    data = _patch_header(_craft(_unit(0x01, _frame_payload(0)), _unit(0x01, _frame_payload(1))), 32, ">Q", 1)
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
