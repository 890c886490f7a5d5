"""The mcodec container format: write, read and validate mcodec bitstreams.

Implements docs/bitstream.md (format version `FORMAT_VERSION`, 3; readers of
versions 1 and 2 streams included) exactly; read that first. A
stream is a signature, a CRC-checked file header carrying a `SequenceHeader`,
then CRC-checked units: one FRAME per coded frame, then INDEX (key-frame
offsets), then END. Readers validate incrementally, one unit in memory at a
time, never allocate from an unchecked length and never loop over an unchecked
count; every malformed input raises `BitstreamError` with a byte offset.

All offsets are bytes from the first byte of the signature; all sizes are bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from mcodec.errors import BitstreamError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SIGNATURE", "FORMAT_VERSION", "CODING_FLAG_OBMC", "CODING_FLAG_SCALE2", "CODING_FLAG_LOOPFILTER",
    "KNOWN_CODING_FLAGS", "FRAME_FLAG_SCALE2", "FRAME_FLAG_FILTER", "KNOWN_FRAME_FLAGS", "MAX_DIM", "MAX_PIXELS", "MAX_HEADER_LENGTH",
    "FRAME_KEY", "FRAME_INTER", "FRAME_REBUILT", "QUALITY_PER_FRAME",
    "MASK_OFF", "MASK_AUTO", "MASK_FIXED", "PIX_FMT_YUV420P",
    "COLOR_RANGE_LIMITED", "COLOR_RANGE_FULL",
    "COLOR_MATRIX_BT601", "COLOR_MATRIX_BT709", "COLOR_MATRIX_UNSPECIFIED",
    "UNIT_FRAME", "UNIT_INDEX", "UNIT_END", "ANCILLARY_BIT",
    "CodingParams", "SequenceHeader", "FrameUnit", "IndexUnit", "EndUnit", "UnknownUnit",
    "Unit", "UnitSummary", "Bitstream", "frame_hash", "BitstreamWriter", "BitstreamReader",
    "read_bitstream", "inspect", "format_summary", "Salvage", "salvage",
]

SIGNATURE = b"\x8bMCD\r\n\x1a\n"
FORMAT_VERSION = 3  # the spec version written, and this reader's version
# CodingParams.flags bits (docs section 4). Version 1 streams have flags 0.
CODING_FLAG_OBMC = 0x0001   # predicted frames use overlapped block motion compensation
CODING_FLAG_SCALE2 = 0x0002  # frames may be coded at twice the width and height
CODING_FLAG_LOOPFILTER = 0x0004  # frames may carry a loop filter (version 3)
KNOWN_CODING_FLAGS = CODING_FLAG_OBMC | CODING_FLAG_SCALE2 | CODING_FLAG_LOOPFILTER
# FrameUnit.flags bits (docs section 10); the codec refuses other bits.
FRAME_FLAG_SCALE2 = 0x01    # this frame is coded at twice the width and height
FRAME_FLAG_FILTER = 0x02    # this frame's last segment is its loop filter (version 3)
KNOWN_FRAME_FLAGS = FRAME_FLAG_SCALE2 | FRAME_FLAG_FILTER
MAX_DIM = 16384  # luma pixels, per side
MAX_PIXELS = 2**26  # luma pixels per frame
MAX_HEADER_LENGTH = 2**20  # bytes; frozen for every version (docs section 3)

FRAME_KEY, FRAME_INTER, FRAME_REBUILT = 0, 1, 2
QUALITY_PER_FRAME = 255
MASK_OFF, MASK_AUTO, MASK_FIXED = 0, 1, 2
PIX_FMT_YUV420P = 0
COLOR_RANGE_LIMITED, COLOR_RANGE_FULL = 0, 1
COLOR_MATRIX_BT601, COLOR_MATRIX_BT709, COLOR_MATRIX_UNSPECIFIED = 0, 1, 2

UNIT_FRAME, UNIT_INDEX, UNIT_END = 0x01, 0x02, 0x7F
ANCILLARY_BIT = 0x80

_FRAME_TYPE_NAMES = ("key", "inter", "rebuilt")
_MASK_MODE_NAMES = ("off", "auto", "fixed")
_COLOR_RANGE_NAMES = ("limited", "full")
_COLOR_MATRIX_NAMES = ("bt601", "bt709", "unspecified")

_ENVELOPE = struct.Struct(">HHI")  # format_version, min_reader_version, header_length
# Fixed part of the sequence-header payload, in order; "model_name" is its length byte.
_HEADER_FIELDS = (
    ("width", "I"), ("height", "I"), ("fps_num", "I"), ("fps_den", "I"), ("frame_count", "Q"),
    ("pix_fmt", "B"), ("color_range", "B"), ("color_matrix", "B"),
    ("gop", "I"), ("quality", "B"), ("mask_mode", "B"), ("mask_ratio_permille", "H"),
    ("patch_size", "B"), ("search_range", "B"), ("flags", "H"),
    ("model_sha256", "32s"), ("model_name", "B"),
)
_HEADER_FIXED = struct.Struct(">" + "".join(code for _, code in _HEADER_FIELDS))  # 72 bytes
_HEADER_OFFSETS = {  # field -> offset in the payload
    name: struct.calcsize(">" + "".join(code for _, code in _HEADER_FIELDS[:i]))
    for i, (name, _) in enumerate(_HEADER_FIELDS)
}
_CODING_FIELDS = ("gop", "quality", "mask_mode", "mask_ratio_permille", "patch_size", "search_range", "flags")
_PAYLOAD_START = len(SIGNATURE) + _ENVELOPE.size  # 16

_UNIT_HEAD = struct.Struct(">BI")  # type, length
_UNIT_OVERHEAD = _UNIT_HEAD.size + 4  # head + CRC = 9
_FRAME_FIXED = struct.Struct(">IBBB16sB")  # index, type, quality, flags, hash, n_segments: 24
_FRAME_OFFSETS = {"index": 0, "frame_type": 4, "quality": 5, "flags": 6, "frame_hash": 7, "segments": 23}
_INDEX_ENTRY = struct.Struct(">IQ")  # frame_index, byte_offset
_U32, _U64 = struct.Struct(">I"), struct.Struct(">Q")
_MIN_FRAME_UNIT = _UNIT_OVERHEAD + _FRAME_FIXED.size  # 33
_MIN_TAIL = 2 * _UNIT_OVERHEAD + _U32.size + _U64.size  # empty INDEX + END: 30
_MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_READ_CHUNK = 1 << 20  # bytes per read(), so a truncated pipe never costs a full claimed length


class _FieldError(ValueError):
    """A field value out of range; `field` lets the parser report the field's byte offset."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _check_int(field: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _FieldError(field, f"{field} must be an integer in {lo}..{hi}, got {value!r}")


def _check_bytes(field: str, value: Any, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise _FieldError(field, f"{field} must be {size} bytes, got {value!r}")


@dataclass(frozen=True)
class CodingParams:
    """Encoder settings the decoder needs (sequence header, docs section 4).

    Attributes:
        gop: key-frame interval, frames (>= 1).
        quality: 0..254 for the whole stream, or QUALITY_PER_FRAME (255).
        patch_size: luma pixels per patch side (1..255).
        search_range: motion search range, luma pixels (0..255).
        mask_mode: MASK_OFF, MASK_AUTO or MASK_FIXED.
        mask_ratio_permille: masking ratio for MASK_FIXED, 0..1000 (0 otherwise).
        flags: coding-tool bits (CODING_FLAG_*); other bits are invalid.
    """

    gop: int
    quality: int
    patch_size: int
    search_range: int
    mask_mode: int = MASK_OFF
    mask_ratio_permille: int = 0
    flags: int = 0

    def __post_init__(self) -> None:
        _check_int("gop", self.gop, 1, 2**32 - 1)
        _check_int("quality", self.quality, 0, 255)
        _check_int("patch_size", self.patch_size, 1, 255)
        _check_int("search_range", self.search_range, 0, 255)
        _check_int("mask_mode", self.mask_mode, 0, len(_MASK_MODE_NAMES) - 1)
        _check_int("mask_ratio_permille", self.mask_ratio_permille, 0, 1000)
        _check_int("flags", self.flags, 0, 2**16 - 1)
        if self.flags & ~KNOWN_CODING_FLAGS:
            raise _FieldError("flags", f"flags 0x{self.flags:04x}: unknown coding-tool bits "
                                       f"0x{self.flags & ~KNOWN_CODING_FLAGS:04x}")


@dataclass(frozen=True)
class SequenceHeader:
    """Stream-wide parameters (docs section 4). Raises ValueError on a bad value.

    Attributes:
        width, height: luma pixels, 1..MAX_DIM each, width*height <= MAX_PIXELS.
        fps_num, fps_den: frame rate fps_num/fps_den frames per second, both >= 1.
        frame_count: number of frames, or 0 when unknown at write time.
        coding: encoder settings.
        model_sha256: 32-byte SHA-256 of the model weights.
        model_name: 1..64 characters of [A-Za-z0-9._-].
        pix_fmt: PIX_FMT_YUV420P.
        color_range: COLOR_RANGE_LIMITED or COLOR_RANGE_FULL.
        color_matrix: COLOR_MATRIX_BT601, _BT709 or _UNSPECIFIED.
        extra: reserved bytes (<= 65535) from newer writers, kept verbatim.
    """

    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int
    coding: CodingParams
    model_sha256: bytes
    model_name: str
    pix_fmt: int = PIX_FMT_YUV420P
    color_range: int = COLOR_RANGE_LIMITED
    color_matrix: int = COLOR_MATRIX_UNSPECIFIED
    extra: bytes = b""

    def __post_init__(self) -> None:
        _check_int("width", self.width, 1, MAX_DIM)
        _check_int("height", self.height, 1, MAX_DIM)
        if self.width * self.height > MAX_PIXELS:
            raise _FieldError(
                "width", f"width*height = {self.width * self.height} exceeds {MAX_PIXELS} pixels"
            )
        _check_int("fps_num", self.fps_num, 1, 2**32 - 1)
        _check_int("fps_den", self.fps_den, 1, 2**32 - 1)
        _check_int("frame_count", self.frame_count, 0, 2**64 - 1)
        _check_int("pix_fmt", self.pix_fmt, PIX_FMT_YUV420P, PIX_FMT_YUV420P)
        _check_int("color_range", self.color_range, 0, len(_COLOR_RANGE_NAMES) - 1)
        _check_int("color_matrix", self.color_matrix, 0, len(_COLOR_MATRIX_NAMES) - 1)
        if not isinstance(self.coding, CodingParams):
            raise _FieldError("gop", f"coding must be CodingParams, got {self.coding!r}")
        _check_bytes("model_sha256", self.model_sha256, 32)
        if not isinstance(self.model_name, str) or not _MODEL_NAME.fullmatch(self.model_name):
            raise _FieldError(
                "model_name", f"model_name must be 1..64 of [A-Za-z0-9._-], got {self.model_name!r}"
            )
        if not isinstance(self.extra, bytes) or len(self.extra) > 2**16 - 1:
            raise _FieldError("extra", "extra must be bytes, at most 65535 of them")

    @property
    def fps(self) -> Fraction:
        """Frame rate, frames per second."""
        return Fraction(self.fps_num, self.fps_den)

    @property
    def max_unit_length(self) -> int:
        """Largest unit payload allowed, bytes: 4 raw yuv420p frames + 64 KiB."""
        chroma = ((self.width + 1) // 2) * ((self.height + 1) // 2)
        return 4 * (self.width * self.height + 2 * chroma) + 65536


@dataclass(frozen=True)
class FrameUnit:
    """One coded frame (FRAME unit, docs section 5.2). Raises ValueError on a bad value.

    Attributes:
        index: frame number in stream order, from 0.
        frame_type: FRAME_KEY, FRAME_INTER or FRAME_REBUILT.
        quality: quality the frame was coded at, 0..254.
        frame_hash: 16 bytes, `frame_hash()` of the decoded picture.
        segments: up to 255 opaque entropy-coded strings, meaning set by the codec
            (`mcodec.codec.syntax.FrameSyntax` is their layout).
        flags: FRAME_FLAG_* bits (version 3), u8.
    """

    index: int
    frame_type: int
    quality: int
    frame_hash: bytes
    segments: tuple[bytes, ...]
    flags: int = 0

    def __post_init__(self) -> None:
        _check_int("index", self.index, 0, 2**32 - 1)
        _check_int("frame_type", self.frame_type, 0, len(_FRAME_TYPE_NAMES) - 1)
        _check_int("quality", self.quality, 0, 254)
        _check_int("flags", self.flags, 0, 255)
        _check_bytes("frame_hash", self.frame_hash, 16)
        if (not isinstance(self.segments, tuple) or len(self.segments) > 255
                or not all(isinstance(s, bytes) for s in self.segments)):
            raise _FieldError("segments", "segments must be a tuple of at most 255 bytes objects")

    @property
    def payload_length(self) -> int:
        """Bytes of this frame's unit payload: fixed fields, segment lengths, segments."""
        return _FRAME_FIXED.size + 4 * len(self.segments) + sum(len(s) for s in self.segments)

    @property
    def unit_size(self) -> int:
        """Bytes this frame takes in a stream: its unit's head and CRC plus the payload."""
        return _UNIT_OVERHEAD + self.payload_length


@dataclass(frozen=True)
class IndexUnit:
    """Key frames as (frame_index, byte_offset of its FRAME unit), increasing (INDEX unit)."""

    entries: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class EndUnit:
    """End of stream (END unit): the number of FRAME units."""

    frame_count: int


@dataclass(frozen=True)
class UnknownUnit:
    """An ancillary unit (type >= 0x80) this reader does not interpret; payload kept."""

    type: int
    payload: bytes


Unit = FrameUnit | IndexUnit | EndUnit | UnknownUnit


def frame_hash(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> bytes:
    """16-byte BLAKE2b of the cropped Y, U, V planes (uint8, rows in C order), docs section 6.

    Args:
        y: (H, W) uint8 luma; u, v: (ceil(H/2), ceil(W/2)) uint8 chroma.
    """
    rows, cols = y.shape if y.ndim == 2 else (0, 0)
    chroma = ((rows + 1) // 2, (cols + 1) // 2)
    digest = hashlib.blake2b(digest_size=16)
    for name, plane, shape in (("y", y, y.shape), ("u", u, chroma), ("v", v, chroma)):
        if str(plane.dtype) != "uint8" or plane.ndim != 2 or plane.shape != shape:
            raise ValueError(
                f"{name}: need a 2-D uint8 plane of shape {shape}, got {plane.dtype} {plane.shape}"
            )
        digest.update(plane.tobytes())  # C order even for strided views
    return digest.digest()


def _encode_file_header(header: SequenceHeader) -> bytes:
    """Signature + envelope + sequence-header payload + CRC (docs sections 2-4)."""
    fields = {**dataclasses.asdict(header.coding), **dataclasses.asdict(header)}
    fields["model_name"] = len(header.model_name)
    payload = b"".join((
        _HEADER_FIXED.pack(*(fields[name] for name, _ in _HEADER_FIELDS)),
        header.model_name.encode("ascii"),
        struct.pack(">H", len(header.extra)),
        header.extra,
    ))
    # A version-1 reader ignores the coding flags, so only streams that set one need version 2;
    # a version-2 reader would not know the loop filter's frame flag and segment.
    min_reader = (3 if header.coding.flags & CODING_FLAG_LOOPFILTER
                  else 2 if header.coding.flags else 1)
    envelope = _ENVELOPE.pack(FORMAT_VERSION, min_reader, len(payload))
    return SIGNATURE + envelope + payload + _U32.pack(zlib.crc32(payload, zlib.crc32(envelope)))


def _parse_sequence_header(payload: bytes) -> SequenceHeader:
    """Decode and validate a CRC-checked sequence-header payload (docs section 4)."""
    size = len(payload)
    if size < _HEADER_FIXED.size + 2:
        raise BitstreamError(f"sequence header: header_length {size} is too short", 12)
    values = dict(zip((name for name, _ in _HEADER_FIELDS), _HEADER_FIXED.unpack_from(payload)))
    name_end = _HEADER_FIXED.size + values.pop("model_name")
    if name_end + 2 > size:
        offset = _PAYLOAD_START + _HEADER_OFFSETS["model_name"]
        raise BitstreamError("sequence header: model_name runs past header_length", offset)
    (extra_length,) = struct.unpack_from(">H", payload, name_end)
    if name_end + 2 + extra_length != size:
        raise BitstreamError(
            f"sequence header: fields take {name_end + 2 + extra_length} bytes, header_length is {size}",
            _PAYLOAD_START + name_end,
        )
    coding = {name: values.pop(name) for name in _CODING_FIELDS}
    try:
        return SequenceHeader(
            **values,
            coding=CodingParams(**coding),
            model_name=payload[_HEADER_FIXED.size:name_end].decode("latin-1"),  # validated as ASCII
            extra=payload[name_end + 2:],
        )
    except _FieldError as err:
        raise BitstreamError(f"sequence header: {err}", _PAYLOAD_START + _HEADER_OFFSETS[err.field]) from None


def _parse_frame(payload: bytes, offset: int, expected_index: int) -> FrameUnit:
    """Decode a CRC-checked FRAME payload of the unit at `offset` (docs section 5.2)."""
    name, base = f"frame unit {expected_index}", offset + _UNIT_HEAD.size
    index, frame_type, quality, flags, digest, n_segments = _FRAME_FIXED.unpack_from(payload)
    if index != expected_index:
        raise BitstreamError(f"{name}: frame_index is {index}, expected {expected_index}", base)
    starts = _FRAME_FIXED.size + 4 * n_segments
    if starts > len(payload):
        raise BitstreamError(
            f"{name}: {n_segments} segment lengths run past the payload", base + _FRAME_OFFSETS["segments"]
        )
    lengths = struct.unpack_from(f">{n_segments}I", payload, _FRAME_FIXED.size)
    if starts + sum(lengths) != len(payload):
        raise BitstreamError(
            f"{name}: segment lengths add up to {sum(lengths)} bytes, payload holds {len(payload) - starts}",
            base + _FRAME_FIXED.size,
        )
    bounds = list(accumulate(lengths, initial=starts))
    segments = tuple(payload[a:b] for a, b in zip(bounds, bounds[1:]))
    try:
        unit = FrameUnit(index, frame_type, quality, digest, segments, flags)
    except _FieldError as err:
        raise BitstreamError(f"{name}: {err}", base + _FRAME_OFFSETS[err.field]) from None
    if index == 0 and frame_type != FRAME_KEY:
        raise BitstreamError(
            f"{name}: the first frame must be a key frame", base + _FRAME_OFFSETS["frame_type"]
        )
    return unit


def _parse_index(payload: bytes, offset: int, key_frames: list[tuple[int, int]]) -> IndexUnit:
    """Decode a CRC-checked INDEX payload; it must list exactly `key_frames` (docs section 5.3)."""
    base = offset + _UNIT_HEAD.size
    (count,) = _U32.unpack_from(payload)
    if _U32.size + count * _INDEX_ENTRY.size != len(payload):
        raise BitstreamError(f"index unit: count {count} does not match payload length {len(payload)}", base)
    if count != len(key_frames):
        raise BitstreamError(
            f"index unit: {count} entries, the stream has {len(key_frames)} key frames", base
        )
    entries = tuple(_INDEX_ENTRY.iter_unpack(payload[_U32.size:]))
    for i, (entry, key) in enumerate(zip(entries, key_frames)):
        if entry != key:
            raise BitstreamError(
                f"index unit: entry {i} is {entry}, key frame {i} is {key}", base + 4 + 12 * i
            )
    return IndexUnit(entries)


def _unit_name(unit_type: int, frames: int) -> str:
    """How errors name a unit of `unit_type` read after `frames` FRAME units."""
    names = {UNIT_FRAME: f"frame unit {frames}", UNIT_INDEX: "index unit", UNIT_END: "end unit"}
    kind = "ancillary unit" if unit_type & ANCILLARY_BIT else "unit"
    return names.get(unit_type, f"{kind} type 0x{unit_type:02x}")


def _seekable(fileobj: BinaryIO) -> bool:
    return bool(getattr(fileobj, "seekable", lambda: False)())


class BitstreamWriter:
    """Writes a stream: signature and header at construction, then frames, then INDEX + END.

    `fileobj` need not be seekable. If it is and `header.frame_count` is 0,
    `close()` rewrites the header in place with the final count. As a context
    manager, leaving on an exception writes no END, so the stream reads as
    truncated. The caller owns (and closes) `fileobj`.
    """

    def __init__(self, fileobj: BinaryIO, header: SequenceHeader) -> None:
        self.header = header
        self._file = fileobj
        self._start = fileobj.tell() if _seekable(fileobj) else None  # where the signature goes
        self._position = 0  # bytes written, = offset of the next unit
        self._frames = 0
        self._key_frames: list[tuple[int, int]] = []  # (frame_index, unit offset)
        self._closed = False
        self._write(_encode_file_header(header))

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._position += len(data)

    def _write_unit(self, unit_type: int, parts: list[bytes]) -> None:
        head = _UNIT_HEAD.pack(unit_type, sum(map(len, parts)))
        crc = zlib.crc32(head)
        self._write(head)
        for part in parts:  # no concatenation: segments can be large
            crc = zlib.crc32(part, crc)
            self._write(part)
        self._write(_U32.pack(crc))

    def write_frame(self, unit: FrameUnit) -> int:
        """Append one frame; returns the byte offset of its unit.

        Raises ValueError when the writer is closed, the index is not the next
        one, frame 0 is not a key frame, the header's frame_count would be
        exceeded, or the payload exceeds `header.max_unit_length`.
        """
        if self._closed:
            raise ValueError("writer is closed")
        if unit.index != self._frames:
            raise ValueError(f"frame index {unit.index}, expected {self._frames}")
        if unit.index == 0 and unit.frame_type != FRAME_KEY:
            raise ValueError("the first frame must be a key frame")
        if self.header.frame_count and self._frames >= self.header.frame_count:
            raise ValueError(f"header promised {self.header.frame_count} frames")
        sizes = [len(s) for s in unit.segments]
        payload_length = unit.payload_length
        if payload_length > self.header.max_unit_length:
            raise ValueError(
                f"frame {unit.index}: {payload_length} bytes exceeds {self.header.max_unit_length}"
            )
        offset = self._position
        fixed = _FRAME_FIXED.pack(
            unit.index, unit.frame_type, unit.quality, unit.flags, unit.frame_hash, len(unit.segments)
        )
        lengths = struct.pack(f">{len(sizes)}I", *sizes)
        self._write_unit(UNIT_FRAME, [fixed, lengths, *unit.segments])
        if unit.frame_type == FRAME_KEY:
            self._key_frames.append((unit.index, offset))
        self._frames += 1
        return offset

    def close(self) -> None:
        """Write INDEX and END (and fix up the header's frame_count if possible). Idempotent.

        Raises ValueError if fewer frames were written than the header promised.
        """
        if self._closed:
            return
        if self.header.frame_count not in (0, self._frames):
            raise ValueError(f"header promised {self.header.frame_count} frames, {self._frames} written")
        self._closed = True
        entries = b"".join(_INDEX_ENTRY.pack(*entry) for entry in self._key_frames)
        self._write_unit(UNIT_INDEX, [_U32.pack(len(self._key_frames)), entries])
        self._write_unit(UNIT_END, [_U64.pack(self._frames)])
        if self._start is not None and self.header.frame_count == 0 and self._frames:
            self.header = dataclasses.replace(self.header, frame_count=self._frames)
            end = self._file.tell()
            self._file.seek(self._start)
            self._file.write(_encode_file_header(self.header))  # same size: all fields fixed-width
            self._file.seek(end)

    def __enter__(self) -> BitstreamWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True  # no END: readers will report the stream as truncated


class BitstreamReader:
    """Reads and validates a stream incrementally, from a file, bytes buffer or pipe.

    The file header is parsed on construction (`header`, `format_version`,
    `min_reader_version`); `units()` then yields every unit. `size` is the
    number of stream bytes from the current position of `fileobj`; when None it
    is found by seeking if `fileobj` is seekable, else the stream is read as a
    pipe (checks against the remaining size are then impossible, but every
    length is still bounded by the header's `max_unit_length`). `salvaging`
    (used by `salvage`) skips the check that the header's frame_count fits in
    the bytes that follow, so that a truncated stream's header can be read.
    """

    def __init__(self, fileobj: BinaryIO, size: int | None = None, *, salvaging: bool = False) -> None:
        self._file = fileobj
        self._salvaging = salvaging  # `salvage`: a truncated stream still has a usable header
        if size is None and _seekable(fileobj):
            here = fileobj.tell()
            size = fileobj.seek(0, io.SEEK_END) - here
            fileobj.seek(here)
        self.size = size
        self.position = 0  # bytes consumed so far
        self._iterated = False
        self.format_version, self.min_reader_version, self.header = self._read_file_header()

    def _left(self) -> int | None:
        return None if self.size is None else self.size - self.position

    def _read(self, n: int, what: str, eof_message: str | None = None) -> bytes:
        """Exactly `n` bytes (n already bounded by a limit), else a truncation error naming `what`.

        `eof_message` replaces the error message when the stream ends right here.
        """
        left = self._left()
        if left is not None and n > left:
            available = left
        else:
            parts, got = [], 0
            while got < n and (chunk := self._file.read(min(n - got, _READ_CHUNK))):
                parts.append(chunk)
                got += len(chunk)
            if got == n:
                self.position += n
                return parts[0] if len(parts) == 1 else b"".join(parts)
            available = got
        message = f"truncated: {what} needs {n} bytes, {available} left"
        if eof_message and available == 0:
            message = eof_message
        raise BitstreamError(message, self.position + available)

    def _read_file_header(self) -> tuple[int, int, SequenceHeader]:
        if self._read(len(SIGNATURE), "signature") != SIGNATURE:
            raise BitstreamError("not an mcodec stream: bad signature", 0)
        envelope = self._read(_ENVELOPE.size, "file header")
        format_version, min_reader_version, header_length = _ENVELOPE.unpack(envelope)
        if header_length > MAX_HEADER_LENGTH:
            raise BitstreamError(
                f"file header: header_length {header_length} exceeds {MAX_HEADER_LENGTH}", 12
            )
        payload = self._read(header_length, "sequence header")
        (crc,) = _U32.unpack(self._read(4, "header CRC"))
        if crc != zlib.crc32(payload, zlib.crc32(envelope)):
            raise BitstreamError("file header: CRC mismatch", _PAYLOAD_START + header_length)
        if not 1 <= min_reader_version <= format_version:
            raise BitstreamError(
                f"file header: min_reader_version {min_reader_version} not in "
                f"1..format_version ({format_version})",
                10,
            )
        if min_reader_version > FORMAT_VERSION:
            raise BitstreamError(
                f"stream needs reader version {min_reader_version}, this is {FORMAT_VERSION}", 10
            )
        header = _parse_sequence_header(payload)
        left = self._left()
        claimed = header.frame_count * _MIN_FRAME_UNIT + _MIN_TAIL  # bytes, at least
        if left is not None and header.frame_count and claimed > left and not self._salvaging:
            raise BitstreamError(
                f"sequence header: frame_count {header.frame_count} cannot fit in the "
                f"{left} bytes that follow",
                _PAYLOAD_START + _HEADER_OFFSETS["frame_count"],
            )
        return format_version, min_reader_version, header

    def units(self) -> Iterator[tuple[int, Unit]]:
        """Yield (byte offset, unit) for every unit in order, validating as it goes.

        Ends after the EndUnit, once no trailing bytes are confirmed; can be
        iterated once. Raises BitstreamError on any malformed input.
        """
        if self._iterated:
            raise ValueError("units() can be iterated only once per reader")
        self._iterated = True
        frames = 0
        key_frames: list[tuple[int, int]] = []  # (frame_index, offset) seen so far
        index_seen = False
        max_length = self.header.max_unit_length
        while True:
            offset = self.position
            head = self._read(
                _UNIT_HEAD.size, "unit header",
                eof_message=f"truncated: stream ends after {frames} frames without an END unit",
            )
            unit_type, length = _UNIT_HEAD.unpack(head)
            name = _unit_name(unit_type, frames)
            low, high = {
                UNIT_FRAME: (_FRAME_FIXED.size, max_length),
                UNIT_INDEX: (_U32.size, _U32.size + _INDEX_ENTRY.size * frames),
                UNIT_END: (_U64.size, _U64.size),
            }.get(unit_type, (0, max_length))
            if not low <= length <= high:
                raise BitstreamError(f"{name}: length {length} not in {low}..{high}", offset + 1)
            left = self._left()
            if left is not None and length + 4 > left:
                raise BitstreamError(
                    f"{name}: length {length} + CRC runs past the end ({left} bytes left)", offset + 1
                )
            payload = self._read(length, f"{name} payload")
            (crc,) = _U32.unpack(self._read(4, f"{name} CRC"))
            if crc != zlib.crc32(payload, zlib.crc32(head)):
                raise BitstreamError(f"{name}: CRC mismatch", offset + _UNIT_HEAD.size + length)

            unit: Unit
            if unit_type == UNIT_FRAME:
                if index_seen:
                    raise BitstreamError(f"{name}: frame after the index unit", offset)
                if frames == self.header.frame_count != 0:
                    raise BitstreamError(
                        f"{name}: more frames than the header's frame_count {frames}", offset
                    )
                unit = _parse_frame(payload, offset, frames)
                if unit.frame_type == FRAME_KEY:
                    key_frames.append((unit.index, offset))
                frames += 1
            elif unit_type == UNIT_INDEX:
                if index_seen:
                    raise BitstreamError("second index unit", offset)
                unit, index_seen, key_frames = _parse_index(payload, offset, key_frames), True, []
            elif unit_type == UNIT_END:
                (count,) = _U64.unpack(payload)
                if not index_seen:
                    raise BitstreamError("end unit: no index unit before it", offset)
                if count != frames:
                    raise BitstreamError(
                        f"end unit: frame_count {count}, stream has {frames} frames", offset + 5
                    )
                if self.header.frame_count not in (0, frames):
                    raise BitstreamError(
                        f"end unit: header's frame_count is {self.header.frame_count}, "
                        f"stream has {frames}",
                        offset,
                    )
                self._check_no_trailing_data()
                yield offset, EndUnit(count)
                return
            elif unit_type & ANCILLARY_BIT:
                unit = UnknownUnit(unit_type, payload)
            else:
                raise BitstreamError(
                    f"unknown critical unit type 0x{unit_type:02x} — written by a newer mcodec?", offset
                )
            yield offset, unit

    def _check_no_trailing_data(self) -> None:
        left = self._left()
        if left is None:
            left = len(self._file.read(1) or b"")
        if left:
            raise BitstreamError("trailing data after the END unit", self.position)


# ----------------------------------------------------------------------------- salvage


@dataclass(frozen=True)
class Salvage:
    """What `salvage` recovered from a damaged stream.

    Attributes:
        header: the sequence header (it must be intact: without it nothing decodes).
        frames: intact FRAME units as (byte offset, unit), increasing frame index.
        damage: one BitstreamError per damaged or skipped region, in stream order.
        frame_count: frames the stream should hold (header, else END unit), or
            None when neither says (a truncated stream of unknown length).
    """

    header: SequenceHeader
    frames: tuple[tuple[int, FrameUnit], ...]
    damage: tuple[BitstreamError, ...]
    frame_count: int | None


def _unit_at(data: bytes, pos: int, max_length: int) -> tuple[int, bytes]:
    """(type, payload) of a CRC-valid unit starting at `pos`, else BitstreamError."""
    if pos + _UNIT_HEAD.size > len(data):
        raise BitstreamError(f"truncated: {len(data) - pos} bytes left, no unit header", pos)
    unit_type, length = _UNIT_HEAD.unpack_from(data, pos)
    name = _unit_name(unit_type, 0).replace(" unit 0", " unit")
    low, high = {UNIT_FRAME: (_FRAME_FIXED.size, max_length), UNIT_END: (_U64.size, _U64.size)}.get(
        unit_type, (0, max_length))
    if not low <= length <= high:
        raise BitstreamError(f"{name}: length {length} not in {low}..{high}", pos + 1)
    end = pos + _UNIT_HEAD.size + length + 4
    if end > len(data):
        raise BitstreamError(f"{name}: length {length} + CRC runs past the end", pos + 1)
    payload = data[pos + _UNIT_HEAD.size:end - 4]
    (crc,) = _U32.unpack_from(data, end - 4)
    if crc != zlib.crc32(data[pos:end - 4]):
        raise BitstreamError(f"{name}: CRC mismatch", end - 4)
    return unit_type, payload


def _resync(data: bytes, pos: int, max_length: int) -> int:
    """Offset of the next CRC-valid FRAME or END unit after `pos`, or len(data).

    Only offsets holding a FRAME/END type byte are tried, and a candidate's CRC
    is computed only when its length fits, so random bytes are skipped fast.
    """
    p = pos + 1
    while p < len(data):
        nxt = [i for i in (data.find(b"\x01", p), data.find(b"\x7f", p)) if i >= 0]
        if not nxt:
            return len(data)
        p = min(nxt)
        try:
            _unit_at(data, p, max_length)
            return p
        except BitstreamError:
            p += 1
    return len(data)


def salvage(data: bytes) -> Salvage:
    """Recover every intact FRAME unit of a possibly damaged stream (``--keep-going``).

    A damaged unit (bad length, CRC mismatch, bad fields) is recorded and the
    reader resynchronises at the next offset where a CRC-valid unit starts; a
    CRC-32 over the unit head and payload makes a false resync practically
    impossible (2^-32 per candidate that also passes the length checks).
    Frame indexes must increase; a unit that goes backwards is skipped as
    damage. The INDEX unit is not needed (it may be lost) and not checked.

    Args:
        data: the whole stream (the compressed file, which is small).

    Raises:
        BitstreamError: the signature, file header or sequence header is
            damaged; nothing can be recovered without them.
    """
    reader = BitstreamReader(io.BytesIO(data), size=len(data), salvaging=True)
    header, pos = reader.header, reader.position
    max_length = header.max_unit_length
    frames: list[tuple[int, FrameUnit]] = []
    damage: list[BitstreamError] = []
    end_count: int | None = None
    while pos < len(data):
        try:
            unit_type, payload = _unit_at(data, pos, max_length)
            unit_end = pos + _UNIT_OVERHEAD + len(payload)
            if unit_type == UNIT_FRAME:
                (index,) = _U32.unpack_from(payload)
                if frames and index <= frames[-1][1].index:
                    raise BitstreamError(f"frame unit {index}: index after frame "
                                         f"{frames[-1][1].index} (out of order)", pos + _UNIT_HEAD.size)
                frames.append((pos, _parse_frame(payload, pos, index)))
            elif unit_type == UNIT_END:
                (end_count,) = _U64.unpack(payload)
                if unit_end != len(data):
                    damage.append(BitstreamError("trailing data after the END unit", unit_end))
                break
            elif unit_type not in (UNIT_INDEX,) and not unit_type & ANCILLARY_BIT:
                raise BitstreamError(f"unknown critical unit type 0x{unit_type:02x} — written by a "
                                     "newer mcodec?", pos)
            pos = unit_end
        except BitstreamError as err:
            damage.append(err)
            pos = _resync(data, pos, max_length)
    else:
        damage.append(BitstreamError(f"truncated: no END unit after {len(frames)} intact frames",
                                     len(data)))
    count = header.frame_count or end_count
    return Salvage(header, tuple(frames), tuple(damage), count)


class UnitSummary(NamedTuple):
    """One unit's place in the file: type name ("frame", "index", "end", "ancillary-0x80"...),
    offset and size in bytes (framing included, so consecutive units tile the file)."""

    type_name: str
    offset: int
    size: int


@dataclass(frozen=True)
class Bitstream:
    """A whole validated stream in memory (see `read_bitstream`)."""

    format_version: int
    min_reader_version: int
    header: SequenceHeader
    frames: tuple[FrameUnit, ...]
    index: IndexUnit
    end: EndUnit
    unit_summaries: tuple[UnitSummary, ...]
    size: int  # bytes


def _type_name(unit: Unit) -> str:
    if isinstance(unit, UnknownUnit):
        return f"ancillary-0x{unit.type:02x}"
    return {FrameUnit: "frame", IndexUnit: "index", EndUnit: "end"}[type(unit)]


def _read_all(fileobj: BinaryIO) -> Bitstream:
    reader = BitstreamReader(fileobj)
    units = list(reader.units())
    ends = [offset for offset, _ in units[1:]] + [reader.position]
    return Bitstream(
        format_version=reader.format_version,
        min_reader_version=reader.min_reader_version,
        header=reader.header,
        frames=tuple(u for _, u in units if isinstance(u, FrameUnit)),
        index=next(u for _, u in units if isinstance(u, IndexUnit)),
        end=next(u for _, u in units if isinstance(u, EndUnit)),
        unit_summaries=tuple(UnitSummary(_type_name(u), o, e - o) for (o, u), e in zip(units, ends)),
        size=reader.position,
    )


def read_bitstream(source: str | os.PathLike[str] | bytes) -> Bitstream:
    """Read and validate a whole stream from a path, "-" (stdin) or bytes.

    Raises BitstreamError on malformed input, and also when the path cannot be opened.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _read_all(io.BytesIO(source))
    if source == "-":
        return _read_all(sys.stdin.buffer)
    try:
        fileobj = open(source, "rb")
    except OSError as err:
        raise BitstreamError(f"cannot open {os.fspath(source)!r}: {err.strerror}") from None
    with fileobj:
        return _read_all(fileobj)


def inspect(source: str | os.PathLike[str] | bytes) -> dict[str, Any]:
    """JSON-ready summary of a validated stream (``mcodec info --json``); sizes in bytes.

    `source` is as for `read_bitstream`.
    """
    stream = read_bitstream(source)
    h, c = stream.header, stream.header.coding
    frame_sizes = [s.size for s in stream.unit_summaries if s.type_name == "frame"]
    n = len(stream.frames)
    return {
        "format_version": stream.format_version,
        "min_reader_version": stream.min_reader_version,
        "size": stream.size,
        "header": {
            "width": h.width, "height": h.height,
            "fps": f"{h.fps_num}/{h.fps_den}", "fps_float": float(h.fps),
            "frame_count": h.frame_count,
            "pix_fmt": "yuv420p",
            "color_range": _COLOR_RANGE_NAMES[h.color_range],
            "color_matrix": _COLOR_MATRIX_NAMES[h.color_matrix],
            "coding": {
                "gop": c.gop,
                "quality": c.quality,  # QUALITY_PER_FRAME (255): chosen per frame
                "mask_mode": _MASK_MODE_NAMES[c.mask_mode],
                "mask_ratio_permille": c.mask_ratio_permille,
                "patch_size": c.patch_size, "search_range": c.search_range, "flags": c.flags,
            },
            "model": {"name": h.model_name, "sha256": h.model_sha256.hex()},
            "extra": h.extra.hex(),
        },
        "units": [{"type": s.type_name, "offset": s.offset, "size": s.size} for s in stream.unit_summaries],
        "frames": [
            {
                "index": f.index, "type": _FRAME_TYPE_NAMES[f.frame_type], "quality": f.quality,
                "bytes": size, "segments": [len(s) for s in f.segments], "hash": f.frame_hash.hex(),
            }
            for f, size in zip(stream.frames, frame_sizes)
        ],
        "totals": {
            "frames": n,
            "key_frames": len(stream.index.entries),
            "header_bytes": stream.unit_summaries[0].offset,
            "frame_bytes": sum(frame_sizes),
            "bits_per_pixel": sum(frame_sizes) * 8 / (n * h.width * h.height) if n else None,
            "kbit_per_s": stream.size * 8 * float(h.fps) / n / 1000 if n else None,
        },
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of an `inspect()` summary (``mcodec info``)."""
    h, c, t = summary["header"], summary["header"]["coding"], summary["totals"]
    rate = f", {t['bits_per_pixel']:.4f} bpp, {t['kbit_per_s']:.1f} kbit/s" if t["frames"] else ""
    quality = "per frame" if c["quality"] == QUALITY_PER_FRAME else c["quality"]
    lines = [
        f"mcodec stream: format version {summary['format_version']} "
        f"(needs reader {summary['min_reader_version']}), {summary['size']} bytes",
        f"  video   {h['width']}x{h['height']} {h['pix_fmt']}, {h['fps']} fps ({h['fps_float']:.3f}), "
        f"{h['color_range']} range, matrix {h['color_matrix']}",
        f"  coding  gop {c['gop']}, quality {quality}, "
        f"mask {c['mask_mode']} ({c['mask_ratio_permille']} permille), patch {c['patch_size']}, "
        f"search {c['search_range']}",
        f"  model   {h['model']['name']} sha256 {h['model']['sha256']}",
        f"  totals  {t['frames']} frames ({t['key_frames']} key), header {t['header_bytes']} bytes, "
        f"frames {t['frame_bytes']} bytes{rate}",
        f"  {'offset':>10} {'size':>9}  unit",
    ]
    frames = iter(summary["frames"])
    for unit in summary["units"]:
        text = unit["type"]
        if text == "frame":
            f = next(frames)
            segments = ",".join(map(str, f["segments"])) or "-"
            text = f"frame {f['index']:>5} {f['type']:<7} q{f['quality']:<3} {f['hash']} segments {segments}"
        lines.append(f"  {unit['offset']:>10} {unit['size']:>9}  {text}")
    return "\n".join(lines)
