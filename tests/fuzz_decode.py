"""Fuzz harness for the mcodec decoder (container parser + frame decoders).

    python -m tests.fuzz_decode --seconds 60 --seed 1          # fuzz for a minute
    python -m tests.fuzz_decode --count 200 --seed 1 --json    # fixed number of inputs
    python -m tests.fuzz_decode --replay tests/corpus           # re-run saved inputs

Seeds are real streams made by the codec (64x48 and 33x17 synthetic video,
3-6 frames, several GOPs, every frame type, masks on and off) with the tiny
randomly initialised model that tests/test_codec.py uses. Each input is a seed
with one to three mutations:

* raw mutations (bit flips, byte changes, truncation, insertion, deletion,
  splices of two streams, edits of the header/unit length fields): these
  mostly stop at a CRC check, which is the point of testing them;
* structural mutations that re-compute every CRC afterwards (segment bytes,
  segment lengths and counts, frame and sequence-header fields, unit order,
  foreign units, crafted entropy-coder strings), so that mutated data gets
  past the container and reaches `mvcoding.decode_motion`, `masking.decode_mask`
  and compressai's rANS decoder (which does not bounds-check its input:
  CompressAI issue #300).

Every input runs in a forked child (one fork per input from a parent that has
loaded torch and the networks once, single-threaded), with an address-space
limit and a wall-clock limit, so a segfault, an abort, a runaway allocation
or a hang is observed and classified instead of killing the harness:

    ok         decoded every frame (hashes verified)
    clean      mcodec.errors.McodecError (BitstreamError, ModelError, ...)
    exception  any other exception                       -> bug
    crash      the child died from a signal / no result  -> bug
    timeout    the child ran past --timeout               -> bug

The child first runs `bitstream.inspect` + `format_summary` (what ``mcodec
info`` does) and then `codec.iter_decode` over all frames. Every bug-triggering
input is saved to tests/corpus/ (``<class>-<what>-<sha8>.bin``; at most
--max-per-signature files per distinct failure) and a summary is printed.

In --replay mode each given file (or every *.bin of a given folder) is run the
same way. Replayed streams are decoded with the tiny model whatever model
digest their header names (the digest of a randomly initialised bundle may
differ across torch versions), so their payloads still reach the decoders.
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import hashlib
import io
import json
import os
import random
import re
import resource
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "corpus"
SIGNATURE = b"\x8bMCD\r\n\x1a\n"
BUG_CLASSES = ("exception", "crash", "timeout")
CLASSES = ("ok", "clean", *BUG_CLASSES)

# Sequence-header field offsets inside the header payload (docs/bitstream.md section 4).
HDR = {"width": (0, "I"), "height": (4, "I"), "fps_num": (8, "I"), "fps_den": (12, "I"),
       "frame_count": (16, "Q"), "pix_fmt": (24, "B"), "color_range": (25, "B"),
       "color_matrix": (26, "B"), "gop": (27, "I"), "quality": (31, "B"), "mask_mode": (32, "B"),
       "mask_ratio_permille": (33, "H"), "patch_size": (35, "B"), "search_range": (36, "B"),
       "flags": (37, "H"), "model_name_length": (71, "B")}
UNIT_FRAME, UNIT_INDEX, UNIT_END = 0x01, 0x02, 0x7F
# Version-5 FRAME payload (docs/bitstream.md section 5.2.1): type | flags << 3 | n_segments << 5,
# quality, 3-byte frame_check, display varint, n_segments - 1 length varints, segments.
FRAME_FIXED = 5
FRAME_MIN = FRAME_FIXED + 1
# Roles of a frame's segments (docs: key = latent strings; inter = motion, mask, latents).
LATENT_ROLES = ("y-anchor", "y-nonanchor", "z")


# ----------------------------------------------------------------------------- stream model


def varint(value: int) -> bytes:
    """Unsigned LEB128 (the version-5 unit lengths, displays and segment lengths)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, end) of a varint of at most 5 bytes; ValueError if it runs past `data`."""
    value = 0
    for i in range(5):
        if pos + i >= len(data):
            raise ValueError("varint runs past the end")
        value |= (data[pos + i] & 0x7F) << (7 * i)
        if not data[pos + i] & 0x80:
            return value, pos + i + 1
    raise ValueError("varint longer than 5 bytes")


@dataclass
class Stream:
    """A stream split into its parts; `build` re-serialises it with fresh CRCs."""

    versions: tuple[int, int]
    header: bytearray                       # sequence-header payload
    units: list[list]                       # [type, bytearray payload]
    header_length: int | None = None        # None: len(header)

    def copy(self) -> Stream:
        return Stream(self.versions, bytearray(self.header), [[t, bytearray(p)] for t, p in self.units],
                      self.header_length)

    def build(self) -> bytes:
        length = len(self.header) if self.header_length is None else self.header_length
        envelope = struct.pack(">HHI", *self.versions, length)
        out = [SIGNATURE, envelope, bytes(self.header),
               struct.pack(">I", zlib.crc32(self.header, zlib.crc32(envelope)))]
        for unit_type, payload in self.units:
            head = bytes([unit_type]) + varint(len(payload))
            out += [head, bytes(payload), struct.pack(">I", zlib.crc32(payload, zlib.crc32(head)))]
        return b"".join(out)

    def frame_positions(self) -> list[int]:
        return [i for i, (t, p) in enumerate(self.units) if t == UNIT_FRAME and len(p) >= FRAME_MIN]

    def get(self, name: str) -> int:
        off, code = HDR[name]
        return struct.unpack_from(">" + code, self.header, off)[0]

    def set(self, name: str, value: int) -> None:
        off, code = HDR[name]
        bits = 8 * struct.calcsize(code)
        struct.pack_into(">" + code, self.header, off, value % (1 << bits))


def parse_stream(data: bytes) -> Stream:
    """Split a well-formed version-5 stream (a seed) into parts; CRCs are not checked."""
    assert data[:8] == SIGNATURE
    fmt, minv, length = struct.unpack_from(">HHI", data, 8)
    assert minv == 5, "seeds are version-5 streams"
    pos = 16 + length + 4
    header = bytearray(data[16:16 + length])
    units = []
    while pos + 2 <= len(data):
        n, start = read_varint(data, pos + 1)
        units.append([data[pos], bytearray(data[start:start + n])])
        pos = start + n + 4
    return Stream((fmt, minv), header, units)


def split_frame(payload: bytes) -> tuple[bytearray, list[bytearray]]:
    """(fixed part: 5 bytes and the display varint, segments) of a well-formed FRAME payload.

    ValueError (or IndexError) when the payload is not one."""
    k = payload[0] >> 5
    _, pos = read_varint(payload, FRAME_FIXED)
    fixed, lengths = bytearray(payload[:pos]), []
    for _ in range(k - 1):
        n, pos = read_varint(payload, pos)
        lengths.append(n)
    if sum(lengths) > len(payload) - pos or (k == 0 and pos != len(payload)):
        raise ValueError("segment lengths do not fit")
    if k:
        lengths.append(len(payload) - pos - sum(lengths))
    segs = []
    for n in lengths:
        segs.append(bytearray(payload[pos:pos + n]))
        pos += n
    return fixed, segs


def join_frame(fixed: bytes, segs: list[bytes], lengths: list[int] | None = None) -> bytearray:
    """A FRAME payload of `fixed` and `segs` (at most 7 count: more run into the last);
    `lengths` replaces the true segment lengths."""
    fixed = bytearray(fixed)
    k = min(len(segs), 7)
    fixed[0] = fixed[0] & 0x1F | k << 5
    if lengths is None:
        lengths = [len(s) for s in segs[:max(k - 1, 0)]]
    return bytearray(bytes(fixed) + b"".join(varint(n % (1 << 32)) for n in lengths) + b"".join(segs))


def frame_type_of(fixed: bytes) -> int:
    return fixed[0] & 0x07


def segment_role(frame_type: int, i: int) -> str:
    if frame_type == 0:
        return LATENT_ROLES[i] if i < 3 else "extra"
    if frame_type in (1, 2):
        return ("motion", "mask", *LATENT_ROLES)[i] if i < 5 else "extra"
    return "extra"  # bi-predicted frames (3, 4): the codec's syntax, not modelled here


# ----------------------------------------------------------------------------- mutators


class Mutator:
    """Picks and applies mutations; `mutate` returns (bytes, [mutation names])."""

    def __init__(self, seeds: list[tuple[str, bytes]], rng: random.Random) -> None:
        self.seeds = seeds
        self.parsed = [parse_stream(d) for _, d in seeds]
        self.rng = rng
        # name -> (weight, function, fixes CRCs)
        self.structural: dict[str, tuple[float, Callable[[Stream], str | None]]] = {
            "seg-bitflip": (8, self.seg_bitflip),
            "seg-bytes": (5, self.seg_bytes),
            "seg-random": (6, self.seg_random),
            "seg-ff-run": (5, self.seg_ff_run),
            "seg-zeros": (3, self.seg_zeros),
            "seg-short": (5, self.seg_short),
            "seg-truncate": (4, self.seg_truncate),
            "seg-extend": (4, self.seg_extend),
            "seg-swap": (5, self.seg_swap),
            "seg-count": (3, self.seg_count),
            "seg-length-field": (3, self.seg_length_field),
            "frame-field": (6, self.frame_field),
            "frame-hash": (4, self.frame_hash),
            "payload-bitflip": (6, self.payload_bitflip),
            "header-field": (6, self.header_field),
            "header-geometry": (5, self.header_geometry),
            "header-geometry-huge": (0.5, self.header_geometry_huge),
            "unit-ops": (5, self.unit_ops),
            "foreign-frames": (3, self.foreign_frames),
        }
        self.raw: dict[str, tuple[float, Callable[[bytes], bytes]]] = {
            "raw-bitflip": (4, self.raw_bitflip),
            "raw-bytes": (2, self.raw_bytes),
            "raw-truncate": (4, self.raw_truncate),
            "raw-insert": (2, self.raw_insert),
            "raw-delete": (2, self.raw_delete),
            "raw-splice": (3, self.raw_splice),
            "raw-length-field": (3, self.raw_length_field),
        }

    # -- helpers

    def _pick(self, table: dict) -> str:
        names = list(table)
        return self.rng.choices(names, weights=[table[n][0] for n in names])[0]

    def _frame(self, s: Stream, latent_only: bool = False):
        """(unit position, fixed, segments, segment index) of a random segment, or None."""
        cands = []
        for pos in s.frame_positions():
            try:
                fixed, segs = split_frame(s.units[pos][1])
            except (ValueError, IndexError):
                continue
            for i in range(len(segs)):
                if not latent_only or segment_role(frame_type_of(fixed), i) in LATENT_ROLES:
                    cands.append((pos, fixed, segs, i))
        return self.rng.choice(cands) if cands else None

    def _segment_edit(self, s: Stream, edit: Callable[[bytearray], bytearray],
                      latent_only: bool = False) -> str | None:
        pick = self._frame(s, latent_only)
        if pick is None:
            return None
        pos, fixed, segs, i = pick
        segs[i] = edit(segs[i])
        s.units[pos][1] = join_frame(fixed, segs)
        return segment_role(frame_type_of(fixed), i)

    def _random_bytes(self, n: int) -> bytearray:
        return bytearray(self.rng.getrandbits(8) for _ in range(n))

    # -- structural mutations (CRCs recomputed by Stream.build)

    def seg_bitflip(self, s: Stream) -> str | None:
        def edit(b: bytearray) -> bytearray:
            for _ in range(self.rng.choice((1, 1, 2, 3, 8))):
                if b:
                    b[self.rng.randrange(len(b))] ^= 1 << self.rng.randrange(8)
            return b
        return self._segment_edit(s, edit)

    def seg_bytes(self, s: Stream) -> str | None:
        def edit(b: bytearray) -> bytearray:
            for _ in range(self.rng.randint(1, 4)):
                if b:
                    b[self.rng.randrange(len(b))] = self.rng.choice((0, 0xFF, 0x7F, 0x80, self.rng.getrandbits(8)))
            return b
        return self._segment_edit(s, edit)

    def seg_random(self, s: Stream) -> str | None:
        n = self.rng.choice((1, 2, 4, 7, 8, 9, 16, 32, 100, 1000, self.rng.randrange(4096)))
        return self._segment_edit(s, lambda b: self._random_bytes(n))

    def seg_ff_run(self, s: Stream) -> str | None:
        # rANS: all-ones state -> the last CDF bin -> bypass mode with long 0xF runs.
        n = self.rng.choice((1, 4, 8, 9, 64, 1000, 20000, 80000))
        fill = self.rng.choice((b"\xff", b"\xff\xff\xff\x7f", b"\xfe"))
        return self._segment_edit(s, lambda b: bytearray((fill * n)[:n]), latent_only=self.rng.random() < 0.8)

    def seg_zeros(self, s: Stream) -> str | None:
        n = self.rng.choice((1, 4, 8, 64, 1000))
        return self._segment_edit(s, lambda b: bytearray(n))

    def seg_short(self, s: Stream) -> str | None:
        # 0..7 bytes: rANS initialisation reads 8 bytes whatever the length.
        n = self.rng.randrange(8)
        return self._segment_edit(s, lambda b: self._random_bytes(n), latent_only=True)

    def seg_truncate(self, s: Stream) -> str | None:
        return self._segment_edit(s, lambda b: b[:self.rng.randrange(len(b) + 1)])

    def seg_extend(self, s: Stream) -> str | None:
        return self._segment_edit(s, lambda b: b + self._random_bytes(self.rng.choice((1, 4, 16, 256))))

    def seg_swap(self, s: Stream) -> str | None:
        """Replace a segment by another one (same frame, other frame, or another seed)."""
        donor = self.rng.choice(self.parsed)
        other = self._frame(donor)
        if other is None:
            return None
        _, _, dsegs, j = other
        return self._segment_edit(s, lambda b: bytearray(dsegs[j]))

    def seg_count(self, s: Stream) -> str | None:
        positions = s.frame_positions()
        if not positions:
            return None
        pos = self.rng.choice(positions)
        try:
            fixed, segs = split_frame(s.units[pos][1])
        except (ValueError, IndexError):
            return None
        if segs and self.rng.random() < 0.5:
            del segs[self.rng.randrange(len(segs))]
        else:
            segs.insert(self.rng.randrange(len(segs) + 1), self._random_bytes(self.rng.randrange(32)))
        s.units[pos][1] = join_frame(fixed, segs)
        return "count"

    def seg_length_field(self, s: Stream) -> str | None:
        cands = []
        for p in s.frame_positions():
            try:
                fixed, segs = split_frame(s.units[p][1])
            except (ValueError, IndexError):
                continue
            if len(segs) >= 2:  # the last segment has no length field
                cands.append((p, fixed, segs))
        if not cands:
            return None
        pos, fixed, segs = self.rng.choice(cands)
        lengths = [len(x) for x in segs[:len(segs) - 1]]
        i = self.rng.randrange(len(lengths))
        n = lengths[i]
        new = self.rng.choice((0, n + 1, max(n - 1, 0), n + 4, 0xFFFFFFFF, 1 << 31, self.rng.getrandbits(32)))
        lengths[i] = new
        if self.rng.random() < 0.5 and i + 1 < len(lengths):  # keep the total: move bytes to the next
            lengths[i + 1] = (lengths[i + 1] + n - new) % (1 << 32)
        s.units[pos][1] = join_frame(fixed, segs, lengths)
        if self.rng.random() < 0.2:  # a non-minimal varint somewhere in the head
            payload = s.units[pos][1]
            at = self.rng.randrange(FRAME_FIXED, len(payload) + 1)
            s.units[pos][1] = payload[:at] + bytearray(b"\x80\x00") + payload[at:]
        return "length"

    def frame_field(self, s: Stream) -> str | None:
        positions = s.frame_positions()
        if not positions:
            return None
        pos = self.rng.choice(positions)
        payload = s.units[pos][1]
        what = self.rng.choice(("display", "display", "type", "type", "quality", "quality", "flags", "nseg"))
        if what == "display":
            try:
                _, end = read_varint(payload, FRAME_FIXED)
            except ValueError:
                return None
            value = self.rng.choice((0, 1, 2, 3, 5, 63, 64, 127, 128, 129, 130, 0xFFFFFFFF))
            s.units[pos][1] = payload[:FRAME_FIXED] + bytearray(varint(value)) + payload[end:]
        elif what == "type":
            payload[0] = payload[0] & 0xF8 | self.rng.choice((0, 1, 2, 3, 4, 5, 7))
        elif what == "quality":
            payload[1] = self.rng.choice((0, 1, 2, 3, 4, 7, 8, 254, 255))
        elif what == "flags":
            payload[0] = payload[0] & 0xE7 | self.rng.choice((1, 2, 3)) << 3
        else:
            payload[0] = payload[0] & 0x1F | self.rng.choice((0, 1, 2, 3, 5, 7)) << 5
        return what

    def frame_hash(self, s: Stream) -> str | None:
        positions = s.frame_positions()
        if not positions:
            return None
        payload = s.units[self.rng.choice(positions)][1]
        payload[2 + self.rng.randrange(3)] ^= 1 << self.rng.randrange(8)  # the 3-byte frame_check
        return "hash"

    def payload_bitflip(self, s: Stream) -> str | None:
        cands = [u for u in s.units if u[1]]
        if not cands:
            return None
        payload = self.rng.choice(cands)[1]
        for _ in range(self.rng.choice((1, 1, 2, 4))):
            payload[self.rng.randrange(len(payload))] ^= 1 << self.rng.randrange(8)
        return "payload"

    def header_field(self, s: Stream) -> str | None:
        name = self.rng.choice([n for n in HDR if n not in ("width", "height")] + ["extra", "versions",
                                                                                  "name", "sha"])
        if name == "extra":
            s.header += self._random_bytes(self.rng.choice((1, 16)))
            name_end = 72 + s.header[71]
            struct.pack_into(">H", s.header, name_end, len(s.header) - name_end - 2)
        elif name == "versions":
            s.versions = self.rng.choice(((1, 2), (2, 1), (2, 2), (0, 0), (1, 0), (65535, 1), (4, 3), (5, 4),
                                          (4, 5), (3, 3)))
        elif name == "name":
            n = s.header[71]
            new = self.rng.choice((b"", b"x" * 65, b"bad name", b"\xff\xfe", b"other"))
            s.header[72:72 + n] = new
            if self.rng.random() < 0.5:  # keep model_name_length consistent half of the time
                s.header[71] = min(len(new), 255)
        elif name == "sha":
            s.header[39 + self.rng.randrange(32)] ^= 1 << self.rng.randrange(8)
        else:
            _, code = HDR[name]
            bits = 8 * struct.calcsize(code)
            value = self.rng.choice((0, 1, 2, 3, 4, 15, 16, 17, 255, 256, 1000, 1001, 65535,
                                     (1 << bits) - 1, 1 << (bits - 1), self.rng.getrandbits(bits)))
            s.set(name, value)
        return name

    _SIDES = (1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 96, 127, 128, 129, 255, 256, 512)

    def header_geometry(self, s: Stream) -> str | None:
        """Another (valid) frame size, so the same strings decode over another latent grid."""
        which = self.rng.choice(("width", "height", "both"))
        if which in ("width", "both"):
            s.set("width", self.rng.choice(self._SIDES))
        if which in ("height", "both"):
            s.set("height", self.rng.choice(self._SIDES))
        return which

    def header_geometry_huge(self, s: Stream) -> str | None:
        """Largest sizes the container accepts (up to 2**26 pixels) or just past them."""
        w, h = self.rng.choice(((16384, 4096), (8192, 8192), (4096, 4096), (2048, 2048), (16384, 1),
                                (1, 16384), (16385, 16), (16384, 4097), (100000, 100000)))
        s.set("width", w)
        s.set("height", h)
        return f"{w}x{h}"

    def unit_ops(self, s: Stream) -> str | None:
        op = self.rng.choice(("dup", "drop", "swap", "ancillary", "critical", "retype", "drop-index",
                              "drop-end", "trailing", "move-index", "fix-count"))
        units = s.units
        frames = s.frame_positions()
        if op == "dup" and frames:
            p = self.rng.choice(frames)
            units.insert(p + 1, [units[p][0], bytearray(units[p][1])])
        elif op == "drop" and frames:
            del units[self.rng.choice(frames)]
        elif op == "swap" and len(frames) >= 2:
            a, b = self.rng.sample(frames, 2)
            units[a], units[b] = units[b], units[a]
        elif op == "ancillary":
            units.insert(self.rng.randrange(len(units) + 1),
                         [self.rng.randrange(0x80, 0x100), self._random_bytes(self.rng.randrange(64))])
        elif op == "critical":
            units.insert(self.rng.randrange(len(units) + 1),
                         [self.rng.choice((0, 3, 0x10, 0x7E)), self._random_bytes(self.rng.randrange(32))])
        elif op == "retype" and units:
            self.rng.choice(units)[0] = self.rng.choice((0, 1, 2, 0x7F, 0x80, 0x03))
        elif op == "drop-index":
            s.units = [u for u in units if u[0] != UNIT_INDEX]
        elif op == "drop-end":
            s.units = [u for u in units if u[0] != UNIT_END]
        elif op == "trailing":
            units.append([UNIT_END, bytearray(8)])
        elif op == "move-index":
            idx = [i for i, u in enumerate(units) if u[0] == UNIT_INDEX]
            if idx:
                unit = units.pop(idx[0])
                units.insert(self.rng.randrange(len(units) + 1), unit)
        elif op == "fix-count":  # renumber frames and fix INDEX/END so only deeper checks can fail
            self._renumber(s)
        else:
            return None
        if op in ("dup", "drop", "swap") and self.rng.random() < 0.7:
            self._renumber(s)
        return op

    def _renumber(self, s: Stream) -> None:
        """Make displays, INDEX and END consistent again (offsets recomputed).

        Every frame gets display = decode index (a key frame must have it; other
        frames may keep their reordering only if it still is a permutation, which
        after a dup/drop/swap it rarely is). The END digest is kept: the codec
        then finds it wrong, which is a deeper check."""
        n = 0
        offset = 16 + len(s.header) + 4
        keys = []
        for unit in s.units:
            if unit[0] == UNIT_FRAME and len(unit[1]) >= FRAME_MIN:
                try:
                    _, end = read_varint(unit[1], FRAME_FIXED)
                except ValueError:
                    end = FRAME_FIXED + 1
                key = frame_type_of(unit[1]) == 0
                unit[1] = unit[1][:FRAME_FIXED] + bytearray(varint(n if key else 0)) + unit[1][end:]
                if key:
                    keys.append((n, offset))
                n += 1
            offset += unit_size(len(unit[1]))
        # INDEX offsets depend on the INDEX's own size only through units after it (none are frames).
        for unit in s.units:
            if unit[0] == UNIT_INDEX:
                unit[1] = bytearray(struct.pack(">I", len(keys)) + b"".join(struct.pack(">IQ", *k) for k in keys))
            elif unit[0] == UNIT_END:
                unit[1] = bytearray(struct.pack(">Q", n) + bytes(unit[1][8:24]).ljust(16, b"\0"))
        if s.get("frame_count"):
            s.set("frame_count", n)

    def foreign_frames(self, s: Stream) -> str | None:
        """Frames of another seed (other size, GOP or mask mode) under this header."""
        donor = self.rng.choice(self.parsed)
        s.units = [[t, bytearray(p)] for t, p in donor.units]
        s.set("frame_count", donor.get("frame_count"))
        self._renumber(s)
        return "frames"

    # -- raw mutations (CRCs left stale, except by chance)

    def raw_bitflip(self, d: bytes) -> bytes:
        b = bytearray(d)
        for _ in range(self.rng.choice((1, 1, 2, 8))):
            b[self.rng.randrange(len(b))] ^= 1 << self.rng.randrange(8)
        return bytes(b)

    def raw_bytes(self, d: bytes) -> bytes:
        b = bytearray(d)
        for _ in range(self.rng.randint(1, 4)):
            b[self.rng.randrange(len(b))] = self.rng.getrandbits(8)
        return bytes(b)

    def raw_truncate(self, d: bytes) -> bytes:
        return d[:self.rng.randrange(len(d))]

    def raw_insert(self, d: bytes) -> bytes:
        i = self.rng.randrange(len(d) + 1)
        return d[:i] + bytes(self._random_bytes(self.rng.choice((1, 4, 9, 100)))) + d[i:]

    def raw_delete(self, d: bytes) -> bytes:
        i = self.rng.randrange(len(d))
        return d[:i] + d[i + self.rng.choice((1, 4, 9, 100)):]

    def raw_splice(self, d: bytes) -> bytes:
        """A prefix of this stream + a suffix of another, often at unit boundaries (valid CRCs)."""
        _, other = self.rng.choice(self.seeds)
        if self.rng.random() < 0.6:
            i = self.rng.choice(_unit_offsets(d))
            j = self.rng.choice(_unit_offsets(other))
        else:
            i, j = self.rng.randrange(len(d) + 1), self.rng.randrange(len(other) + 1)
        return d[:i] + other[j:]

    def raw_length_field(self, d: bytes) -> bytes:
        """Another value in a unit's length varint (or the header's u32 header_length)."""
        offsets = [o + 1 for o in _unit_offsets(d)[2:-1] if o + 2 <= len(d)]
        if len(d) >= 16 and (not offsets or self.rng.random() < 0.2):
            b = bytearray(d)
            (n,) = struct.unpack_from(">I", b, 12)
            value = self.rng.choice((0, n + 1, max(n - 1, 0), 1 << 20, (1 << 20) + 1, 0xFFFFFFFF))
            struct.pack_into(">I", b, 12, value & 0xFFFFFFFF)
            return bytes(b)
        if not offsets:
            return d
        off = self.rng.choice(offsets)
        try:
            n, end = read_varint(d, off)
        except ValueError:
            n, end = 0, off + 1
        value = self.rng.choice((0, n + 1, max(n - 1, 0), n + 9, 127, 128, 1 << 20, (1 << 20) + 1,
                                 0xFFFFFFFF, self.rng.getrandbits(32)))
        new = varint(value % (1 << 32))
        if self.rng.random() < 0.2:  # the same value, not minimal
            new = bytes(new[:-1]) + bytes([new[-1] | 0x80, 0])
        return d[:off] + new + d[end:]

    # -- driver

    def mutate(self) -> tuple[bytes, list[str], str]:
        """One input: (bytes, mutation names, seed name)."""
        k = self.rng.randrange(len(self.seeds))
        seed_name, seed = self.seeds[k]
        names: list[str] = []
        if self.rng.random() < 0.3:
            data = seed
            for _ in range(self.rng.choice((1, 1, 1, 2))):
                name = self._pick(self.raw)
                data = self.raw[name][1](data) if data else data
                names.append(name)
            return data, names, seed_name
        s = self.parsed[k].copy()
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            name = self._pick(self.structural)
            detail = self.structural[name][1](s)
            names.append(name if detail is None else f"{name}:{detail}")
        return s.build(), names, seed_name


def unit_size(payload_length: int) -> int:
    """Bytes of a version-5 unit: type, length varint, payload, CRC."""
    return 1 + len(varint(payload_length)) + payload_length + 4


def _unit_offsets(data: bytes) -> list[int]:
    """Offsets of the units of a (possibly already damaged) stream, plus 0, 16 and the end."""
    out = [0, min(16, len(data))]
    if len(data) >= 16:
        (length,) = struct.unpack_from(">I", data, 12)
        pos = 16 + length + 4
        while pos + 2 <= len(data):
            out.append(pos)
            try:
                n, start = read_varint(data, pos + 1)
            except ValueError:
                break
            pos = start + n + 4
    out.append(len(data))
    return out


# ----------------------------------------------------------------------------- seeds and model


SEED_SPECS = {  # name: (width, height, frames, gop, mask, quality)
    "gop3-auto-64x48": (64, 48, 6, 3, "auto", 2),
    "gop2-off-64x48": (64, 48, 5, 2, "off", 2),
    "gop4-half-64x48": (64, 48, 4, 4, 0.5, 1),
    "gop2-off-33x17": (33, 17, 3, 2, "off", 3),
}


def tiny_networks(workdir: Path):
    """The tiny random model of tests/conftest.py (seed 0), as CodecNetworks named 'tiny'."""
    from mcodec.codec.zoo import networks_from_file
    from tests.conftest import tiny_bundle

    path = tiny_bundle(workdir / "tiny.safetensors")
    return networks_from_file(str(path), model_id="tiny")


def make_seeds(nets, workdir: Path) -> list[tuple[str, bytes]]:
    """Real streams made by the codec with `nets` (see SEED_SPECS)."""
    from mcodec.codec import codec
    from mcodec.codec.options import EncodeOptions
    from tests.conftest import synthetic_frames, write_clip

    seeds = []
    for name, (w, h, n, gop, mask, q) in SEED_SPECS.items():
        src = write_clip(workdir / f"{name}.y4m", synthetic_frames(w, h, n, seed=1))
        out = workdir / f"{name}.bin"
        codec.encode(str(src), str(out), options=EncodeOptions(quality=q, gop=gop, mask=mask),
                     networks=nets, overwrite=True)
        seeds.append((name, out.read_bytes()))
    return seeds


# ----------------------------------------------------------------------------- running one input


@dataclass
class Outcome:
    cls: str                      # one of CLASSES
    detail: str = ""              # exception type / signal / error category
    message: str = ""
    where: str = ""               # innermost mcodec/compressai frame of an exception
    seconds: float = 0.0
    frames: int = 0

    @property
    def signature(self) -> str:
        return f"{self.cls}:{self.detail}:{self.where}"


def _category(message: str) -> str:
    """A short, number-free name for a clean error message (for the summary)."""
    for pattern, name in (("hash mismatch", "frame hash mismatch"), ("CRC mismatch", "CRC mismatch"),
                          ("undecodable payload", "undecodable payload"),
                          ("range coder", "range coder"), ("allocate", "allocation failure")):
        if pattern in message:
            return name
    text = re.sub(r"\(at byte offset \d+\)", "", message)
    text = re.sub(r"0x[0-9a-f]+|\d+", "N", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "S", text)
    return text.strip()[:70]


def _where(tb) -> str:
    frames = [f for f in traceback.extract_tb(tb) if "/mcodec/" in f.filename or "compressai" in f.filename]
    frames = frames or traceback.extract_tb(tb)
    if not frames:
        return ""
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno}:{f.name}"


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def decode_in_child(data: bytes, nets, any_model: bool) -> dict:
    """What the child does: inspect (mcodec info) then decode every frame."""
    from mcodec.codec import bitstream as bs
    from mcodec.codec import codec
    from mcodec.errors import McodecError

    result: dict = {"frames": 0}
    try:
        bs.format_summary(bs.inspect(data))
    except McodecError:
        pass  # the decoder must then fail cleanly too (checked below)
    except Exception as exc:  # noqa: BLE001 - a bug of `mcodec info`
        return {"cls": "exception", "detail": f"info:{type(exc).__name__}", "message": str(exc)[:300],
                "where": _where(exc.__traceback__)}
    try:
        use = nets
        if any_model:
            try:
                digest = bs.BitstreamReader(io.BytesIO(data)).header.model_sha256
                use = dataclasses.replace(nets, digest=digest)
            except McodecError:
                pass
        _, frames = codec.iter_decode(io.BytesIO(data), networks=use)
        for _ in frames:
            result["frames"] += 1
        result["cls"] = "ok"
    except McodecError as exc:
        result.update(cls="clean", detail=type(exc).__name__, message=str(exc)[:300],
                      category=_category(str(exc)))
    except BaseException as exc:  # noqa: BLE001 - anything else is a bug
        result.update(cls="exception", detail=type(exc).__name__, message=str(exc)[:300],
                      where=_where(exc.__traceback__))
    return result


class ForkRunner:
    """Runs `decode_in_child` for one input in a forked child with time and memory limits."""

    def __init__(self, nets, timeout: float = 20.0, mem_limit: int = 4 << 30, any_model: bool = False) -> None:
        self.nets, self.timeout, self.any_model = nets, timeout, any_model
        self.mem_limit = mem_limit

    def run(self, data: bytes) -> Outcome:
        rfd, wfd = os.pipe()
        # faulthandler writes the Python stack here on a fatal signal or just before the timeout.
        trace = tempfile.TemporaryFile()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # child: never returns
            code = 0
            try:
                os.close(rfd)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                faulthandler.enable(file=trace, all_threads=False)
                faulthandler.dump_traceback_later(max(self.timeout - 1.0, 0.5), file=trace)
                limit = _vm_size() + self.mem_limit
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                result = decode_in_child(data, self.nets, self.any_model)
                os.write(wfd, json.dumps(result).encode())
            except BaseException:  # noqa: BLE001
                code = 70
            finally:
                os._exit(code)
        os.close(wfd)
        chunks, deadline, timed_out = [], start + self.timeout, False
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                ready, _, _ = select.select([rfd], [], [], left)
                if ready:
                    chunk = os.read(rfd, 65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        finally:
            os.close(rfd)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        seconds = time.monotonic() - start
        trace.seek(0)
        where = _faulthandler_where(trace.read().decode("utf-8", "replace"))
        trace.close()
        if timed_out:
            return Outcome("timeout", "timeout", f"no result after {self.timeout:.0f} s", where, seconds)
        if os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            return Outcome("crash", name, f"child killed by {name}", where, seconds)
        try:
            result = json.loads(b"".join(chunks))
        except ValueError:
            return Outcome("crash", f"exit{os.WEXITSTATUS(status)}", "child ended without a result", where,
                           seconds)
        detail = result.get("category", "") if result["cls"] == "clean" else result.get("detail", "")
        return Outcome(result["cls"], detail, result.get("message", ""), result.get("where", ""),
                       seconds, result.get("frames", 0))


def _faulthandler_where(text: str) -> str:
    """Innermost mcodec frame ("file.py:line:function") of a faulthandler dump, or ""."""
    # faulthandler lists the most recent call first: '  File "/x/mcodec/codec/entropy.py", line 143 in f'
    for m in re.finditer(r'File "([^"]+)", line (\d+) in (\S+)', text):
        if "/mcodec/" in m.group(1):
            return f"{Path(m.group(1)).name}:{m.group(2)}:{m.group(3)}"
    return ""


# ----------------------------------------------------------------------------- fuzz loop and report


@dataclass
class Report:
    runs: int = 0
    seconds: float = 0.0
    classes: Counter = field(default_factory=Counter)
    by_mutation: dict = field(default_factory=lambda: defaultdict(Counter))
    clean_categories: Counter = field(default_factory=Counter)
    bugs: dict = field(default_factory=dict)           # signature -> {count, files, example}
    hash_flip: Counter = field(default_factory=Counter)  # outcomes of frame-hash-only mutations
    mutator_errors: int = 0

    def to_json(self) -> dict:
        return {"runs": self.runs, "seconds": round(self.seconds, 1), "classes": dict(self.classes),
                "by_mutation": {k: dict(v) for k, v in sorted(self.by_mutation.items())},
                "clean_categories": dict(self.clean_categories.most_common()),
                "hash_flip": dict(self.hash_flip), "bugs": self.bugs, "mutator_errors": self.mutator_errors}


def _slug(outcome: Outcome) -> str:
    base = {"crash": outcome.detail, "timeout": "hang", "exception": outcome.detail}[outcome.cls]
    where = outcome.where.split(":")[0].replace(".py", "") if outcome.where else ""
    text = "-".join(x for x in (base, where) if x)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def save_input(data: bytes, outcome: Outcome, corpus: Path) -> Path:
    corpus.mkdir(parents=True, exist_ok=True)
    name = f"{outcome.cls}-{_slug(outcome)}-{hashlib.sha256(data).hexdigest()[:8]}.bin"
    path = corpus / name
    if not path.exists():
        path.write_bytes(data)
    return path


def fuzz(nets, seeds, *, seed: int, seconds: float | None, count: int | None, timeout: float,
         corpus: Path | None, max_per_signature: int, verbose: bool, log=print) -> Report:
    rng = random.Random(seed)
    mut = Mutator(seeds, rng)
    runner = ForkRunner(nets, timeout=timeout)
    report = Report()
    start = time.monotonic()
    seen: set[bytes] = set()
    while True:
        if count is not None and report.runs >= count:
            break
        if seconds is not None and time.monotonic() - start >= seconds:
            break
        try:
            data, names, seed_name = mut.mutate()
        except Exception:  # noqa: BLE001 - a harness bug must not end a long run
            report.mutator_errors += 1
            log("mutator error (harness bug):\n" + traceback.format_exc(limit=3))
            continue
        outcome = runner.run(data)
        report.runs += 1
        report.classes[outcome.cls] += 1
        for name in names:
            report.by_mutation[name.split(":")[0]][outcome.cls] += 1
        if len(names) == 1 and names[0].startswith("frame-hash"):
            report.hash_flip[outcome.detail if outcome.cls == "clean" else outcome.cls] += 1
        if outcome.cls == "clean":
            report.clean_categories[outcome.detail] += 1
        if verbose:
            log(f"{report.runs:6d} {outcome.cls:9s} {outcome.seconds:6.2f}s {seed_name} "
                f"{'+'.join(names)}: {outcome.detail} {outcome.message[:80]}")
        if outcome.cls in BUG_CLASSES:
            bug = report.bugs.setdefault(outcome.signature, {
                "class": outcome.cls, "detail": outcome.detail, "where": outcome.where,
                "message": outcome.message, "count": 0, "files": [], "mutations": Counter()})
            bug["count"] += 1
            bug["mutations"]["+".join(n.split(":")[0] for n in names)] += 1
            digest = hashlib.sha256(data).digest()
            if corpus is not None and digest not in seen and (
                    not max_per_signature or len(bug["files"]) < max_per_signature):
                seen.add(digest)
                path = save_input(data, outcome, corpus)
                bug["files"].append(os.path.relpath(path, REPO) if path.is_relative_to(REPO) else str(path))
                log(f"  saved {path.name}: {outcome.cls} {outcome.detail} {outcome.where} "
                    f"({'+'.join(names)}, seed {seed_name})")
    report.seconds = time.monotonic() - start
    for bug in report.bugs.values():
        bug["mutations"] = dict(bug["mutations"])
    return report


def print_report(report: Report, log=print) -> None:
    log(f"\ninputs run: {report.runs} in {report.seconds:.0f} s "
        f"({report.runs / max(report.seconds, 1e-9):.1f}/s)")
    log("outcomes:   " + ", ".join(f"{c} {report.classes.get(c, 0)}" for c in CLASSES))
    log("\nper mutation (an input may carry several):")
    log(f"  {'mutation':24s}" + "".join(f"{c:>10s}" for c in CLASSES))
    for name, counts in sorted(report.by_mutation.items()):
        log(f"  {name:24s}" + "".join(f"{counts.get(c, 0):10d}" for c in CLASSES))
    log("\nclean errors, most common messages:")
    for cat, n in report.clean_categories.most_common(15):
        log(f"  {n:6d}  {cat}")
    if report.hash_flip:
        log("\nframe_hash bit flips (CRC fixed) -> " + ", ".join(f"{k}: {v}" for k, v in report.hash_flip.items()))
    log(f"\nbugs: {sum(b['count'] for b in report.bugs.values())} inputs, {len(report.bugs)} signatures")
    for sig, bug in sorted(report.bugs.items(), key=lambda kv: -kv[1]["count"]):
        log(f"  {bug['count']:5d}  {bug['class']} {bug['detail']} {bug['where']}: {bug['message'][:100]}")
        log(f"         mutations: {bug['mutations']}")
        for f in bug["files"]:
            log(f"         {f}")


def replay(nets, paths: list[Path], timeout: float, log=print) -> dict[str, dict]:
    runner = ForkRunner(nets, timeout=timeout, any_model=True)
    files = []
    for p in paths:
        files += sorted(p.glob("*.bin")) if p.is_dir() else [p]
    results = {}
    for path in files:
        outcome = runner.run(path.read_bytes())
        results[path.name] = dataclasses.asdict(outcome)
        log(f"{path.name}: {outcome.cls} {outcome.detail} {outcome.where} {outcome.message[:120]}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz_decode", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="fuzz for this long (default 60 unless --count)")
    parser.add_argument("--count", type=int, help="fuzz this many inputs")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the mutations (default 1)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per input (default 20)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="where bug inputs go (default tests/corpus)")
    parser.add_argument("--no-save", action="store_true", help="do not save bug-triggering inputs")
    parser.add_argument("--max-per-signature", type=int, default=2,
                        help="files saved per distinct failure (0 = all; default 2)")
    parser.add_argument("--replay", nargs="+", type=Path, metavar="PATH",
                        help="run these files / folders of *.bin instead of fuzzing")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout at the end")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per input")
    args = parser.parse_args(argv)

    # One thread in the parent: forking after an OpenMP pool has started can deadlock children.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    with tempfile.TemporaryDirectory(prefix="mcodec-fuzz-") as tmp:
        nets = tiny_networks(Path(tmp))
        if args.replay:
            results = replay(nets, args.replay, args.timeout, log=log)
            if args.json:
                print(json.dumps(results))
            return 1 if any(r["cls"] in BUG_CLASSES for r in results.values()) else 0
        seeds = make_seeds(nets, Path(tmp))
    log(f"seeds: {', '.join(f'{n} ({len(d)} B)' for n, d in seeds)}; model digest "
        f"{nets.digest.hex()[:16]}")
    seconds = args.seconds if args.seconds is not None or args.count is not None else 60.0
    report = fuzz(nets, seeds, seed=args.seed, seconds=seconds, count=args.count, timeout=args.timeout,
                  corpus=None if args.no_save else args.corpus,
                  max_per_signature=args.max_per_signature, verbose=args.verbose, log=log)
    print_report(report, log=log)
    if args.json:
        print(json.dumps(report.to_json()))
    return 1 if report.bugs else 0


if __name__ == "__main__":
    sys.exit(main())
