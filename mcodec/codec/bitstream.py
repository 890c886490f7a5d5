"""The mcodec container format: write, read and validate mcodec bitstreams.

Implements docs/bitstream.md (format version `FORMAT_VERSION`, 5; readers of
version 1 to 4 streams included) exactly; read that first. A stream is a
signature, a CRC-checked file header carrying a `SequenceHeader`, then
CRC-checked units: one FRAME per coded frame in decode order (in version 4 each
also carries its display index, so B-frames can come before the frames they
are displayed after), then INDEX (key-frame offsets), then END. Readers
validate incrementally, one unit in memory at a time, never allocate from an
unchecked length and never loop over an unchecked count; every malformed input
raises `BitstreamError` with a byte offset.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from mcodec.errors import BitstreamError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SIGNATURE", "FORMAT_VERSION", "CODING_FLAG_OBMC", "CODING_FLAG_SCALE2", "CODING_FLAG_LOOPFILTER", "CODING_FLAG_FINE",
    "KNOWN_CODING_FLAGS", "FRAME_FLAG_SCALE2", "FRAME_FLAG_FILTER", "KNOWN_FRAME_FLAGS", "MAX_DIM", "MAX_PIXELS", "MAX_HEADER_LENGTH",
    "FRAME_KEY", "FRAME_INTER", "FRAME_REBUILT", "FRAME_BI_INTER", "FRAME_BI_REBUILT", "MAX_REORDER",
    "QUALITY_PER_FRAME",
    "MASK_OFF", "MASK_AUTO", "MASK_FIXED", "PIX_FMT_YUV420P",
    "COLOR_RANGE_LIMITED", "COLOR_RANGE_FULL",
    "COLOR_MATRIX_BT601", "COLOR_MATRIX_BT709", "COLOR_MATRIX_UNSPECIFIED",
    "UNIT_FRAME", "UNIT_INDEX", "UNIT_END", "ANCILLARY_BIT",
    "CodingParams", "SequenceHeader", "FrameUnit", "IndexUnit", "EndUnit", "UnknownUnit",
    "Unit", "UnitSummary", "Bitstream", "frame_hash", "BitstreamWriter", "BitstreamReader",
    "read_bitstream", "inspect", "format_summary", "format_ranges", "Salvage", "salvage",
]

SIGNATURE = b"\x8bMCD\r\n\x1a\n"
FORMAT_VERSION = 5  # the spec version written, and this reader's version
# CodingParams.flags bits (docs section 4). Version 1 streams have flags 0.
CODING_FLAG_OBMC = 0x0001   # predicted frames use overlapped block motion compensation
CODING_FLAG_SCALE2 = 0x0002  # frames may be coded at twice the width and height
CODING_FLAG_LOOPFILTER = 0x0004  # frames may carry a loop filter (version 3)
# The upper layer (frames flagged FRAME_FLAG_SCALE2) is coded at native size by the
# model's fine networks (latent stride 8), not at twice the size (version 4).
CODING_FLAG_FINE = 0x0008
KNOWN_CODING_FLAGS = CODING_FLAG_OBMC | CODING_FLAG_SCALE2 | CODING_FLAG_LOOPFILTER | CODING_FLAG_FINE
# FrameUnit.flags bits (docs section 10); the codec refuses other bits.
FRAME_FLAG_SCALE2 = 0x01    # this frame is coded in the upper layer: at twice the width and
                            # height, or with the fine networks when the header has CODING_FLAG_FINE
FRAME_FLAG_FILTER = 0x02    # this frame's last segment is its loop filter (version 3)
KNOWN_FRAME_FLAGS = FRAME_FLAG_SCALE2 | FRAME_FLAG_FILTER
MAX_DIM = 16384  # luma pixels, per side
MAX_PIXELS = 2**26  # luma pixels per frame
MAX_HEADER_LENGTH = 2**20  # bytes; frozen for every version (docs section 3)

FRAME_KEY, FRAME_INTER, FRAME_REBUILT = 0, 1, 2
FRAME_BI_INTER, FRAME_BI_REBUILT = 3, 4  # predicted from a past and a future frame (version 4)
MAX_REORDER = 64  # frames; |display index - decode index| of any frame (version 4)
QUALITY_PER_FRAME = 255
MASK_OFF, MASK_AUTO, MASK_FIXED = 0, 1, 2
PIX_FMT_YUV420P = 0
COLOR_RANGE_LIMITED, COLOR_RANGE_FULL = 0, 1
COLOR_MATRIX_BT601, COLOR_MATRIX_BT709, COLOR_MATRIX_UNSPECIFIED = 0, 1, 2

UNIT_FRAME, UNIT_INDEX, UNIT_END = 0x01, 0x02, 0x7F
ANCILLARY_BIT = 0x80

_FRAME_TYPE_NAMES = ("key", "inter", "rebuilt", "bi-inter", "bi-rebuilt")
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

_U32, _U64 = struct.Struct(">I"), struct.Struct(">Q")
_INDEX_ENTRY = struct.Struct(">IQ")  # frame_index, byte_offset
_DIGEST_SIZE = 16  # bytes of a frame hash and of the END digest (BLAKE2b-128)
# Bytes of a FRAME's frame_check (the first bytes of its frame hash): 4 in version 4, 3 from
# version 5, where the END digest's 128 bits over every frame hash are what guard the stream.
_CHECK_SIZE_V4, _CHECK_SIZE = 4, 3
# Version 1-3 units: type u8, length u32, payload, CRC; FRAME payloads start with 24 fixed bytes.
_UNIT_HEAD = struct.Struct(">BI")  # type, length
_FRAME_FIXED = struct.Struct(">IBBB16sB")  # index, type, quality, flags, hash, n_segments: 24
_FRAME_OFFSETS = {"index": 0, "frame_type": 4, "quality": 5, "flags": 6, "frame_hash": 7, "segments": 23}
# Version 4-5 units: type u8, length varint, payload, CRC. FRAME payload: type | flags << 3 |
# n_segments << 5 (u8), quality (u8), frame_check (4 bytes in version 4, 3 from 5), then the
# display varint, n_segments - 1 segment-length varints, the segments (docs section 5.2).
_FRAME4_OFFSETS = {"index": 0, "frame_type": 0, "flags": 0, "segments": 0, "quality": 1, "frame_hash": 2}
_FRAME4_MAX_SEGMENTS = 7  # n_segments has 3 bits
_FRAME4_FLAGS = 0x03  # frame flags have 2 bits
_VARINT_MAX_BYTES = 5  # a varint holds a u32


class _Layout(NamedTuple):
    """Sizes that differ between the unit layouts of versions 1-3, 4 and 5."""

    version: int  # 3 (streams of versions 1-3), 4 or 5
    min_frame: int  # smallest FRAME payload
    end_length: int  # END payload
    min_frame_unit: int  # smallest FRAME unit, framing included
    min_tail: int  # smallest INDEX + END units
    check_size: int  # bytes of a FRAME's frame hash or frame_check

    @property
    def varint_units(self) -> bool:
        """Units of version 4 and later: varint lengths, the packed FRAME payload."""
        return self.version >= 4


def _varint_layout(version: int, check_size: int) -> _Layout:
    fixed = 2 + check_size  # first byte, quality, frame_check; then at least a 1-byte display
    return _Layout(version, fixed + 1, _U64.size + _DIGEST_SIZE, 6 + fixed + 1, 6 + 4 + 6 + 24, check_size)


_LAYOUT3 = _Layout(3, _FRAME_FIXED.size, _U64.size, 9 + _FRAME_FIXED.size, 9 + 4 + 9 + 8, _DIGEST_SIZE)  # 33, 30
_LAYOUT4 = _varint_layout(4, _CHECK_SIZE_V4)  # smallest frame unit 13, tail 40
_LAYOUT5 = _varint_layout(5, _CHECK_SIZE)  # 12, 40
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


def _check_bytes(field: str, value: Any, *sizes: int) -> None:
    if not isinstance(value, bytes) or len(value) not in sizes:
        allowed = " or ".join(map(str, sizes))
        raise _FieldError(field, f"{field} must be {allowed} bytes, got {value!r}")


# ----------------------------------------------------------------------------- varints (version 4)


def _varint(value: int) -> bytes:
    """Minimal unsigned LEB128 of 0 <= value < 2^32: 7 bits a byte, low group first."""
    if not 0 <= value < 2**32:
        raise ValueError(f"varint value {value} not in 0..2^32-1")
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint_size(value: int) -> int:
    """Bytes of `_varint(value)` (any value >= 0, so sizes of invalid units are still defined)."""
    return max(1, -(-value.bit_length() // 7))


def _read_varint(data: bytes, pos: int, what: str, base: int) -> tuple[int, int]:
    """(value, end) of the varint at data[pos]; its absolute offset is base + pos.

    Refuses, with that offset, a varint running past `data`, longer than 5
    bytes, not minimal (a last byte 0x00 after the first) or >= 2^32.
    """
    value = 0
    for i in range(_VARINT_MAX_BYTES):
        if pos + i >= len(data):
            raise BitstreamError(f"{what}: varint runs past the end", base + pos)
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i:
                raise BitstreamError(f"{what}: varint is not minimal", base + pos)
            if value >= 2**32:
                raise BitstreamError(f"{what}: varint {value} exceeds 2^32-1", base + pos)
            return value, pos + i + 1
    raise BitstreamError(f"{what}: varint longer than {_VARINT_MAX_BYTES} bytes", base + pos)


def _zigzag(n: int) -> int:
    """0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4, ..."""
    return 2 * n if n >= 0 else -2 * n - 1


def _unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -(z >> 1) - 1


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
        index: decode index: the frame's place in stream order, from 0.
        frame_type: FRAME_KEY, FRAME_INTER, FRAME_REBUILT, FRAME_BI_INTER or
            FRAME_BI_REBUILT (the last two from version 4).
        quality: quality the frame was coded at, 0..254.
        frame_hash: `frame_hash()` of the decoded picture: 16 bytes (what an
            encoder passes, and what version 1-3 streams hold), or its first 4
            bytes (a version-4 stream's frame_check) or 3 (version 5's).
        segments: opaque entropy-coded strings, meaning set by the codec
            (`mcodec.codec.syntax.FrameSyntax` is their layout): at most 255,
            and at most 7 to be written (version 4).
        flags: FRAME_FLAG_* bits (version 3), u8; only bits 0-1 can be written (version 4).
        display: display index (output order, from 0); None means `index` and
            is stored so, so `display` is always an int. Equals `index` in
            version 1-3 streams and for key frames.
    """

    index: int
    frame_type: int
    quality: int
    frame_hash: bytes
    segments: tuple[bytes, ...]
    flags: int = 0
    display: int = None  # type: ignore[assignment]  # resolved to an int in __post_init__

    def __post_init__(self) -> None:
        _check_int("index", self.index, 0, 2**32 - 1)
        if self.display is None:
            object.__setattr__(self, "display", self.index)
        _check_int("display", self.display, 0, 2**32 - 1)
        _check_int("frame_type", self.frame_type, 0, len(_FRAME_TYPE_NAMES) - 1)
        _check_int("quality", self.quality, 0, 254)
        _check_int("flags", self.flags, 0, 255)
        _check_bytes("frame_hash", self.frame_hash, _DIGEST_SIZE, _CHECK_SIZE_V4, _CHECK_SIZE)
        if (not isinstance(self.segments, tuple) or len(self.segments) > 255
                or not all(isinstance(s, bytes) for s in self.segments)):
            raise _FieldError("segments", "segments must be a tuple of at most 255 bytes objects")

    @property
    def payload_length(self) -> int:
        """Bytes of this frame's version-5 unit payload (what the writer writes): fixed
        fields, display, segment lengths, segments."""
        return _frame4_head_length(self) + sum(len(s) for s in self.segments)

    @property
    def unit_size(self) -> int:
        """Bytes this frame takes in a version-5 stream: type, length, payload, CRC."""
        payload = self.payload_length
        return 1 + _varint_size(payload) + payload + 4


@dataclass(frozen=True)
class IndexUnit:
    """Key frames as (frame_index, byte_offset of its FRAME unit), increasing (INDEX unit).

    frame_index is the key frame's decode index (in version 4 also its display index)."""

    entries: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class EndUnit:
    """End of stream (END unit): the number of FRAME units and, from version 4, `digest`:
    BLAKE2b-128 of the frames' 16-byte hashes in decode order (None in version 1-3 streams)."""

    frame_count: int
    digest: bytes | None = None


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
    # Version-5 units (varint lengths, the FRAME layout, a 3-byte frame_check) are unreadable
    # to older readers.
    envelope = _ENVELOPE.pack(FORMAT_VERSION, FORMAT_VERSION, len(payload))
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


# ----------------------------------------------------------------------------- FRAME payloads


def _parse_frame3(payload: bytes, base: int, expected_index: int) -> FrameUnit:
    """Decode a CRC-checked version 1-3 FRAME payload starting at absolute offset `base`
    (docs section 5.2.2)."""
    name = f"frame unit {expected_index}"
    index, frame_type, quality, flags, digest, n_segments = _FRAME_FIXED.unpack_from(payload)
    if index != expected_index:
        raise BitstreamError(f"{name}: frame_index is {index}, expected {expected_index}", base)
    if frame_type > FRAME_REBUILT:  # bi-predicted frames came with version 4
        raise BitstreamError(f"{name}: frame_type must be 0..2 in a version 1-3 stream, got {frame_type}",
                             base + _FRAME_OFFSETS["frame_type"])
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
    segments = tuple(payload[a:b] for a, b in pairwise(bounds))
    try:
        unit = FrameUnit(index, frame_type, quality, digest, segments, flags)
    except _FieldError as err:
        raise BitstreamError(f"{name}: {err}", base + _FRAME_OFFSETS[err.field]) from None
    if index == 0 and frame_type != FRAME_KEY:
        raise BitstreamError(
            f"{name}: the first frame must be a key frame", base + _FRAME_OFFSETS["frame_type"]
        )
    return unit


# Versions 4-5 (docs section 5.2.1): the writer's `_frame4_head`, the size `_frame4_head_length`
# and the reader's `_parse_frame4` are the only code that knows this layout. The writer writes
# version 5 (a 3-byte frame_check); the reader reads both.


def _display_field(unit: FrameUnit) -> int:
    """The version-4 `display` field: a key frame's display index, else zigzag(display - index)."""
    return unit.display if unit.frame_type == FRAME_KEY else _zigzag(unit.display - unit.index)


def _frame4_head_length(unit: FrameUnit) -> int:
    """Bytes of the version-5 FRAME payload before the segments."""
    lengths = sum(_varint_size(len(s)) for s in unit.segments[:-1])
    return 2 + _CHECK_SIZE + _varint_size(_display_field(unit)) + lengths


def _frame4_head(unit: FrameUnit) -> bytes:
    """The version-5 FRAME payload before the segments (`unit` checked by the writer:
    16-byte hash, at most 7 segments, flags in bits 0-1, display within MAX_REORDER)."""
    first = unit.frame_type | unit.flags << 3 | len(unit.segments) << 5
    return b"".join((
        bytes((first, unit.quality)), unit.frame_hash[:_CHECK_SIZE],
        _varint(_display_field(unit)),
        *(_varint(len(s)) for s in unit.segments[:-1]),
    ))


def _frame4_type(payload: bytes) -> int:
    """frame_type of a version-4 FRAME payload (>= 1 byte)."""
    return payload[0] & 0x07


def _parse_frame4(payload: bytes, offset: int, base: int, decode_index: int | None,
                  check_size: int) -> FrameUnit:
    """Decode a CRC-checked version-4 or -5 FRAME payload of the unit at `offset`, the
    payload starting at absolute offset `base`; its frame_check has `check_size` bytes.

    `decode_index` is the number of FRAME units before this one; None (used by
    `salvage` after damage) takes a key frame's display as its decode index.
    Checks every rule of one frame (docs section 5.5: a key frame's display is
    its decode index, |display - decode index| <= MAX_REORDER, frame 0 is a
    key frame); the rules across frames are `_DisplayOrder`'s.
    """
    first, quality, check = payload[0], payload[1], payload[2:2 + check_size]
    frame_type, flags, n_segments = _frame4_type(payload), first >> 3 & 0x03, first >> 5
    where = "frame unit" if decode_index is None else f"frame unit {decode_index}"
    if frame_type >= len(_FRAME_TYPE_NAMES):
        raise BitstreamError(f"{where}: frame_type must be 0..{len(_FRAME_TYPE_NAMES) - 1}, got {frame_type}",
                             base + _FRAME4_OFFSETS["frame_type"])
    value, pos = _read_varint(payload, 2 + check_size, f"{where}: display", base)
    if decode_index is None:
        if frame_type != FRAME_KEY:
            raise BitstreamError(f"{where}: not a key frame, cannot be placed after damage", offset)
        decode_index = value
        where = f"frame unit {decode_index}"
    display = value if frame_type == FRAME_KEY else decode_index + _unzigzag(value)
    lengths = []
    for i in range(n_segments - 1):  # at most 6
        length, pos = _read_varint(payload, pos, f"{where}: segment {i} length", base)
        lengths.append(length)
    rest = len(payload) - pos
    if n_segments == 0 and rest:
        raise BitstreamError(f"{where}: no segments, but {rest} bytes follow", base + pos)
    if sum(lengths) > rest:
        starts = 2 + check_size + _varint_size(value)
        raise BitstreamError(
            f"{where}: segment lengths add up to {sum(lengths)} bytes, payload holds {rest}", base + starts
        )
    if n_segments:
        lengths.append(rest - sum(lengths))
    bounds = list(accumulate(lengths, initial=pos))
    segments = tuple(payload[a:b] for a, b in pairwise(bounds))
    try:
        if display < 0:
            raise _FieldError("display", f"display {display} is negative")
        unit = FrameUnit(decode_index, frame_type, quality, check, segments, flags, display)
        _check_display(unit)
    except _FieldError as err:
        raise BitstreamError(f"{where}: {err}", base + _frame4_offset(err.field, check_size)) from None
    if decode_index == 0 and frame_type != FRAME_KEY:
        raise BitstreamError(f"{where}: the first frame must be a key frame", base)
    return unit


def _frame4_offset(field: str, check_size: int) -> int:
    """Offset of `field` in a version-4 or -5 FRAME payload."""
    return 2 + check_size if field == "display" else _FRAME4_OFFSETS[field]


def _check_display(unit: FrameUnit) -> None:
    """The version-4 rules of one frame's display index (docs section 5.5); raises _FieldError."""
    if unit.frame_type == FRAME_KEY and unit.display != unit.index:
        raise _FieldError("display", f"key frame has display {unit.display}, "
                                     f"it must equal its decode index {unit.index}")
    if abs(unit.display - unit.index) > MAX_REORDER:
        raise _FieldError("display", f"display {unit.display} is {unit.display - unit.index:+d} from "
                                     f"decode index {unit.index}, beyond MAX_REORDER {MAX_REORDER}")


class _DisplayOrder:
    """The version-4 rules across frames (docs section 5.5), in O(MAX_REORDER) memory.

    Every display index is unique and the displays are exactly 0..n-1. `low`
    is the smallest display not seen yet, `ahead` the displays seen above it.
    A frame's display is within MAX_REORDER of its decode index, so once the
    frame of decode index d is in, no later frame can carry a display below
    d + 1 - MAX_REORDER: `low` must be at least that, and `ahead` never holds
    more than 2 * MAX_REORDER + 1 displays.
    """

    def __init__(self) -> None:
        self.low = 0
        self.ahead: set[int] = set()

    def add(self, unit: FrameUnit) -> None:
        """Account for the next frame (its own rules already checked); raises
        _FieldError("display", ...) and changes nothing if a rule breaks."""
        display = unit.display
        if display < self.low or display in self.ahead:
            raise _FieldError("display", f"display {display} is already taken by an earlier frame")
        low = self.low
        if display == low:
            low += 1
            while low in self.ahead:
                low += 1
        if low < unit.index + 1 - MAX_REORDER:
            raise _FieldError("display", f"display {low} is missing: frame {unit.index} was the last "
                                         f"that could carry it (MAX_REORDER {MAX_REORDER})")
        if display == self.low:
            self.ahead.difference_update(range(display + 1, low))
            self.low = low
        else:
            self.ahead.add(display)

    def mismatch(self, frames: int) -> str | None:
        """Why the displays seen are not exactly 0..frames-1, or None when they are."""
        if self.low == frames and not self.ahead:
            return None
        why = f"display {self.low} is missing" if self.low < frames else \
            f"display {max(self.ahead)} is not below the frame count"
        return f"the displays of the {frames} frames are not 0..{frames - 1}: {why}"


def _parse_index(payload: bytes, base: int, key_frames: list[tuple[int, int]]) -> IndexUnit:
    """Decode a CRC-checked INDEX payload starting at absolute offset `base`; it must list
    exactly `key_frames` (docs section 5.3)."""
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
    """Writes a version-5 stream: signature and header at construction, then frames in
    decode order, then INDEX + END.

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
        self._order = _DisplayOrder()
        self._digest = hashlib.blake2b(digest_size=_DIGEST_SIZE)  # the END digest
        self._closed = False
        self._write(_encode_file_header(header))

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._position += len(data)

    def _write_unit(self, unit_type: int, parts: list[bytes]) -> None:
        head = bytes((unit_type,)) + _varint(sum(map(len, parts)))
        crc = zlib.crc32(head)
        self._write(head)
        for part in parts:  # no concatenation: segments can be large
            crc = zlib.crc32(part, crc)
            self._write(part)
        self._write(_U32.pack(crc))

    def write_frame(self, unit: FrameUnit) -> int:
        """Append the next frame in decode order; returns the byte offset of its unit.

        Raises ValueError (and writes nothing) when the writer is closed, the
        index is not the next one, frame 0 is not a key frame, the header's
        frame_count would be exceeded, the frame_hash is not 16 bytes, the unit
        has more than 7 segments or a flag beyond bits 0-1, the display breaks a
        rule (a key frame's display is its index, |display - index| <=
        MAX_REORDER, no display twice, none skipped), or the payload exceeds
        `header.max_unit_length`.
        """
        if self._closed:
            raise ValueError("writer is closed")
        if unit.index != self._frames:
            raise ValueError(f"frame index {unit.index}, expected {self._frames}")
        if unit.index == 0 and unit.frame_type != FRAME_KEY:
            raise ValueError("the first frame must be a key frame")
        if self.header.frame_count and self._frames >= self.header.frame_count:
            raise ValueError(f"header promised {self.header.frame_count} frames")
        if len(unit.frame_hash) != _DIGEST_SIZE:
            raise ValueError(f"frame {unit.index}: frame_hash must be the {_DIGEST_SIZE}-byte frame_hash(), "
                             f"got {len(unit.frame_hash)} bytes")
        if len(unit.segments) > _FRAME4_MAX_SEGMENTS:
            raise ValueError(f"frame {unit.index}: {len(unit.segments)} segments, "
                             f"a frame holds at most {_FRAME4_MAX_SEGMENTS}")
        if unit.flags & ~_FRAME4_FLAGS:
            raise ValueError(f"frame {unit.index}: flags 0x{unit.flags:02x}, only bits 0-1 can be written")
        payload_length = unit.payload_length
        if payload_length > self.header.max_unit_length:
            raise ValueError(
                f"frame {unit.index}: {payload_length} bytes exceeds {self.header.max_unit_length}"
            )
        _check_display(unit)  # _FieldError is a ValueError
        self._order.add(unit)  # last check: it records the display when it passes
        offset = self._position
        self._write_unit(UNIT_FRAME, [_frame4_head(unit), *unit.segments])
        self._digest.update(unit.frame_hash)
        if unit.frame_type == FRAME_KEY:
            self._key_frames.append((unit.index, offset))
        self._frames += 1
        return offset

    def close(self) -> None:
        """Write INDEX and END (and fix up the header's frame_count if possible). Idempotent.

        Raises ValueError if fewer frames were written than the header promised,
        or if their displays are not exactly 0..n-1.
        """
        if self._closed:
            return
        if self.header.frame_count not in (0, self._frames):
            raise ValueError(f"header promised {self.header.frame_count} frames, {self._frames} written")
        if (why := self._order.mismatch(self._frames)) is not None:
            raise ValueError(why)
        self._closed = True
        entries = b"".join(_INDEX_ENTRY.pack(*entry) for entry in self._key_frames)
        self._write_unit(UNIT_INDEX, [_U32.pack(len(self._key_frames)), entries])
        self._write_unit(UNIT_END, [_U64.pack(self._frames), self._digest.digest()])
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

    The unit layout is version 5's when `min_reader_version` is 5, version 4's
    when it is 4 (no older reader can read such streams), else that of versions
    1-3 (any stream an older reader may read has it).
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
        self._layout = _LAYOUT3
        self.format_version, self.min_reader_version, self.header = self._read_file_header()

    @property
    def layout_version(self) -> int:
        """The codec's frame syntax: 4 when the units have the layout of version 4 or 5
        (min_reader_version 4 or 5; they differ only in the frame_check's size), else 3
        (versions 1-3 share one layout)."""
        return 4 if self._layout.varint_units else 3

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
        self._layout = {4: _LAYOUT4, 5: _LAYOUT5}.get(min_reader_version, _LAYOUT3)
        left = self._left()
        claimed = header.frame_count * self._layout.min_frame_unit + self._layout.min_tail  # bytes, at least
        if left is not None and header.frame_count and claimed > left and not self._salvaging:
            raise BitstreamError(
                f"sequence header: frame_count {header.frame_count} cannot fit in the "
                f"{left} bytes that follow",
                _PAYLOAD_START + _HEADER_OFFSETS["frame_count"],
            )
        return format_version, min_reader_version, header

    def _read_unit_head(self, frames: int) -> tuple[int, int, bytes]:
        """(type, length, head bytes) of the next unit, `frames` FRAME units read so far."""
        eof = f"truncated: stream ends after {frames} frames without an END unit"
        if self._layout is _LAYOUT3:
            head = self._read(_UNIT_HEAD.size, "unit header", eof_message=eof)
            unit_type, length = _UNIT_HEAD.unpack(head)
            return unit_type, length, head
        offset = self.position
        head = self._read(1, "unit header", eof_message=eof)
        name = _unit_name(head[0], frames)
        while len(head) < 1 + _VARINT_MAX_BYTES and (len(head) == 1 or head[-1] & 0x80):
            head += self._read(1, f"{name} length")
        length, _ = _read_varint(head, 1, f"{name}: length", offset)
        return head[0], length, head

    def units(self) -> Iterator[tuple[int, Unit]]:
        """Yield (byte offset, unit) for every unit in order, validating as it goes.

        Ends after the EndUnit, once no trailing bytes are confirmed; can be
        iterated once. Raises BitstreamError on any malformed input.
        """
        if self._iterated:
            raise ValueError("units() can be iterated only once per reader")
        self._iterated = True
        layout = self._layout
        frames = 0
        key_frames: list[tuple[int, int]] = []  # (frame_index, offset) seen so far
        order = _DisplayOrder()  # version 4
        index_seen = False
        max_length = self.header.max_unit_length
        while True:
            offset = self.position
            unit_type, length, head = self._read_unit_head(frames)
            name = _unit_name(unit_type, frames)
            low, high = {
                UNIT_FRAME: (layout.min_frame, max_length),
                UNIT_INDEX: (_U32.size, _U32.size + _INDEX_ENTRY.size * frames),
                UNIT_END: (layout.end_length, layout.end_length),
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
            base = offset + len(head)  # of the payload
            if crc != zlib.crc32(payload, zlib.crc32(head)):
                raise BitstreamError(f"{name}: CRC mismatch", base + length)

            unit: Unit
            if unit_type == UNIT_FRAME:
                if index_seen:
                    raise BitstreamError(f"{name}: frame after the index unit", offset)
                if frames == self.header.frame_count != 0:
                    raise BitstreamError(
                        f"{name}: more frames than the header's frame_count {frames}", offset
                    )
                if layout is _LAYOUT3:
                    unit = _parse_frame3(payload, base, frames)
                else:
                    unit = _parse_frame4(payload, offset, base, frames, layout.check_size)
                    try:
                        order.add(unit)
                    except _FieldError as err:
                        raise BitstreamError(f"{name}: {err}",
                                             base + _frame4_offset("display", layout.check_size)) from None
                if unit.frame_type == FRAME_KEY:
                    key_frames.append((unit.index, offset))
                frames += 1
            elif unit_type == UNIT_INDEX:
                if index_seen:
                    raise BitstreamError("second index unit", offset)
                unit, index_seen, key_frames = _parse_index(payload, base, key_frames), True, []
            elif unit_type == UNIT_END:
                (count,) = _U64.unpack_from(payload)
                if not index_seen:
                    raise BitstreamError("end unit: no index unit before it", offset)
                if count != frames:
                    raise BitstreamError(
                        f"end unit: frame_count {count}, stream has {frames} frames", base
                    )
                if self.header.frame_count not in (0, frames):
                    raise BitstreamError(
                        f"end unit: header's frame_count is {self.header.frame_count}, "
                        f"stream has {frames}",
                        offset,
                    )
                digest = None
                if layout.varint_units:
                    if (why := order.mismatch(frames)) is not None:
                        raise BitstreamError(f"end unit: {why}", offset)
                    digest = payload[_U64.size:]
                self._check_no_trailing_data()
                yield offset, EndUnit(count, digest)
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
        frames: intact FRAME units that could be placed, as (byte offset, unit),
            increasing decode index (`unit.index`), each with its display index.
        damage: one BitstreamError per damaged or skipped region, in stream order.
        frame_count: frames the stream should hold (header, else END unit), or
            None when neither says (a truncated stream of unknown length).
        digest: the END unit's digest (version 4), or None (no END found, or
            a version 1-3 stream).
    """

    header: SequenceHeader
    frames: tuple[tuple[int, FrameUnit], ...]
    damage: tuple[BitstreamError, ...]
    frame_count: int | None
    digest: bytes | None = None


def _unit_at(data: bytes, pos: int, max_length: int, layout: _Layout) -> tuple[int, bytes, int]:
    """(type, payload, payload offset) of a CRC-valid unit starting at `pos`, else BitstreamError."""
    if layout is _LAYOUT3:
        if pos + _UNIT_HEAD.size > len(data):
            raise BitstreamError(f"truncated: {len(data) - pos} bytes left, no unit header", pos)
        unit_type, length = _UNIT_HEAD.unpack_from(data, pos)
        start = pos + _UNIT_HEAD.size
    else:
        if pos + 2 > len(data):
            raise BitstreamError(f"truncated: {len(data) - pos} bytes left, no unit header", pos)
        unit_type = data[pos]
        length, start = _read_varint(data, pos + 1, "unit length", 0)
    name = _unit_name(unit_type, 0).replace(" unit 0", " unit")
    low, high = {UNIT_FRAME: (layout.min_frame, max_length), UNIT_END: (layout.end_length, layout.end_length)
                 }.get(unit_type, (0, max_length))
    if not low <= length <= high:
        raise BitstreamError(f"{name}: length {length} not in {low}..{high}", pos + 1)
    end = start + length + 4
    if end > len(data):
        raise BitstreamError(f"{name}: length {length} + CRC runs past the end", pos + 1)
    (crc,) = _U32.unpack_from(data, end - 4)
    if crc != zlib.crc32(data[pos:end - 4]):
        raise BitstreamError(f"{name}: CRC mismatch", end - 4)
    return unit_type, data[start:end - 4], start


def _resync(data: bytes, pos: int, max_length: int, layout: _Layout) -> int:
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
            _unit_at(data, p, max_length, layout)
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

    In a version-4 stream a frame's decode index is the count of FRAME units
    before it, so after damage only a key frame (whose display index is its
    decode index) can be placed: the other frames up to the next key frame are
    skipped, each recorded as damage. A key frame is always placed by its
    display index (it must still come after the last frame kept). Display
    indexes of the frames kept are unique.

    Args:
        data: the whole stream (the compressed file, which is small).

    Raises:
        BitstreamError: the signature, file header or sequence header is
            damaged; nothing can be recovered without them.
    """
    reader = BitstreamReader(io.BytesIO(data), size=len(data), salvaging=True)
    header, pos, layout = reader.header, reader.position, reader._layout
    max_length = header.max_unit_length
    frames: list[tuple[int, FrameUnit]] = []
    displays: set[int] = set()  # of the frames kept
    damage: list[BitstreamError] = []
    end: EndUnit | None = None
    decode: int | None = 0  # version 4: decode index of the next FRAME unit; None after damage
    while pos < len(data):
        try:
            unit_type, payload, start = _unit_at(data, pos, max_length, layout)
            unit_end = start + len(payload) + 4
            if unit_type == UNIT_FRAME:
                if layout is _LAYOUT3:
                    (index,) = _U32.unpack_from(payload)
                    unit = _parse_frame3(payload, start, index)
                elif _frame4_type(payload) == FRAME_KEY:
                    unit = _parse_frame4(payload, pos, start, None, layout.check_size)  # by its display
                elif decode is None:
                    damage.append(BitstreamError("frame unit: not a key frame, cannot be placed "
                                                 "after damage", pos))
                    pos = unit_end
                    continue
                else:
                    unit = _parse_frame4(payload, pos, start, decode, layout.check_size)
                if frames and unit.index <= frames[-1][1].index:
                    raise BitstreamError(f"frame unit {unit.index}: index after frame "
                                         f"{frames[-1][1].index} (out of order)", start)
                if unit.display in displays:
                    raise BitstreamError(f"frame unit {unit.index}: display {unit.display} is already "
                                         "taken by an earlier frame", start)
                frames.append((pos, unit))
                displays.add(unit.display)
                decode = unit.index + 1
            elif unit_type == UNIT_END:
                (count,) = _U64.unpack_from(payload)
                end = EndUnit(count, payload[_U64.size:] if layout.varint_units else None)
                if unit_end != len(data):
                    damage.append(BitstreamError("trailing data after the END unit", unit_end))
                break
            elif unit_type not in (UNIT_INDEX,) and not unit_type & ANCILLARY_BIT:
                raise BitstreamError(f"unknown critical unit type 0x{unit_type:02x} — written by a "
                                     "newer mcodec?", pos)
            pos = unit_end
        except BitstreamError as err:
            damage.append(err)
            decode = None
            pos = _resync(data, pos, max_length, layout)
    else:
        damage.append(BitstreamError(f"truncated: no END unit after {len(frames)} intact frames",
                                     len(data)))
    count = header.frame_count or (end.frame_count if end else None)
    return Salvage(header, tuple(frames), tuple(damage), count, end.digest if end else None)


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

    `source` is as for `read_bitstream`. Frames are listed in decode order, each
    with its decode ("index") and display ("display") index and the hash the
    stream holds (3 bytes in version 5, 4 in version 4, 16 before); "digest" is the
    END digest (versions 4-5, else None); totals give "decode_order" (the display indexes in
    decode order) and "reorder_depth" (the largest |display - index|).
    """
    stream = read_bitstream(source)
    h, c = stream.header, stream.header.coding
    frame_sizes = [s.size for s in stream.unit_summaries if s.type_name == "frame"]
    n = len(stream.frames)
    digest = stream.end.digest
    return {
        "format_version": stream.format_version,
        "min_reader_version": stream.min_reader_version,
        "size": stream.size,
        "digest": digest.hex() if digest is not None else None,  # END digest (version 4)
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
                "index": f.index, "display": f.display, "type": _FRAME_TYPE_NAMES[f.frame_type],
                "quality": f.quality,
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
            "decode_order": [f.display for f in stream.frames],  # display indexes, in decode order
            "reorder_depth": max((abs(f.display - f.index) for f in stream.frames), default=0),
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
    ]
    lines.append(f"  order   displays in decode order: {format_ranges(t['decode_order']) or '-'} "
                 f"(reorder depth {t['reorder_depth']})")
    if summary["digest"] is not None:
        lines.append(f"  digest  {summary['digest']} (BLAKE2b-128 of the frame hashes, decode order)")
    lines.append(f"  {'offset':>10} {'size':>9}  unit")
    frames = iter(summary["frames"])
    for unit in summary["units"]:
        text = unit["type"]
        if text == "frame":
            f = next(frames)
            segments = ",".join(map(str, f["segments"])) or "-"
            text = (f"frame dec {f['index']:>5} disp {f['display']:>5} {f['type']:<10} q{f['quality']:<3} "
                    f"{f['hash']} segments {segments}")
        lines.append(f"  {unit['offset']:>10} {unit['size']:>9}  {text}")
    return "\n".join(lines)


def format_ranges(values: Iterable[int], sep: str = " ") -> str:
    """Integers with runs of consecutive ones written a-b: "0-3 8 4-7" ("" for none)."""
    runs: list[list[int]] = []
    for d in values:
        if runs and d == runs[-1][1] + 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return sep.join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
