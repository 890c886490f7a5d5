"""The syntax of one coded frame: what its container segments mean, in one place.

A FRAME unit (`mcodec.codec.bitstream.FrameUnit`) carries opaque segments; this
module gives them their layout, for the writer (`FrameSyntax.to_segments`) and
the reader (`FrameSyntax.from_segments`, which checks the segment count before
anything is entropy-decoded). "Latents" are the network's rANS strings.

Format version 4 (what the encoder writes): the *side information* (motion,
mask map, loop filter, those the frame has, in that order) is one adaptive
range-coder stream, and the latents one packed rANS string (z, y anchors,
y non-anchors: `entropy.PackedWriter`):

    key frame:                   ([side: loop filter,] latents)
    predicted / bi-inter frame:  (side: motion, mask[, loop filter], latents)
    rebuilt / bi-rebuilt frame:  (side: motion[, loop filter])

Versions 1-3 (still read): one segment per part, three latent strings:

    key frame:       (*latent strings,                [loop filter])
    predicted frame: (motion, mask, *latent strings,  [loop filter])
    rebuilt frame:   (motion,                         [loop filter])

the loop filter present exactly when the frame's FRAME_FLAG_FILTER is set. Bi
frames code their motion with `mvcoding.write_bi_motion`. Also here: the format's
geometry constants (patch and motion-block sizes) and the sizes of a coded
frame, which both sides derive alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcodec.codec import bitstream as bs
from mcodec.codec import loopfilter, masking, motion, mvcoding
from mcodec.codec.rangecoder import RangeDecoder, RangeEncoder
from mcodec.errors import BitstreamError

_WITH_RESIDUAL = (bs.FRAME_INTER, bs.FRAME_BI_INTER)   # predicted frames carrying a mask and latents
_REBUILT = (bs.FRAME_REBUILT, bs.FRAME_BI_REBUILT)      # predicted frames with motion only
_BI = (bs.FRAME_BI_INTER, bs.FRAME_BI_REBUILT)

PATCH = 16            # luma pixels per latent position (network stride 8 on the half-res tensor)
FINE_PATCH = 8        # the same for the fine networks (latent stride 8)
MOTION_BLOCK = 16     # luma block size of motion vectors at coding scale 1


@dataclass(frozen=True)
class Geometry:
    """Sizes of the coded frame (identical on both sides).

    Attributes:
        height, width: luma size of the frame as coded (`scale` x the output size).
        scale: coding scale, 1 or 2 (motion blocks scale with it, so a 2x frame
            has as many vectors as a 1x one).
        patch: luma pixels per latent position (PATCH; FINE_PATCH for the fine networks).
    """

    height: int
    width: int
    scale: int = 1
    patch: int = PATCH

    @property
    def latent_shape(self) -> tuple[int, int]:
        """(rows, cols) of the patch / latent grid: frames are padded to whole patches."""
        return -(-self.height // self.patch), -(-self.width // self.patch)

    @property
    def padded_shape(self) -> tuple[int, int]:
        """(rows, cols) luma pixels of the frame padded to whole patches."""
        rows, cols = self.latent_shape
        return rows * self.patch, cols * self.patch

    @property
    def motion_block(self) -> int:
        return MOTION_BLOCK * self.scale

    @property
    def motion_shape(self) -> tuple[int, int]:
        return motion.blocks_shape(self.height, self.width, self.motion_block)


Motion = motion.MotionField | motion.BiField


@dataclass(frozen=True, eq=False)
class FrameSyntax:
    """The coded content of one frame, by meaning (decoded side information).

    Attributes:
        frame_type: bs.FRAME_KEY, FRAME_INTER, FRAME_REBUILT, FRAME_BI_INTER or FRAME_BI_REBUILT.
        latents: the network's rANS strings (key frames and frames with a residual).
        motion: the motion field (MotionField; BiField for bi frames), None for key frames.
        mask: the (rows, cols) bool mask map (frames with a residual), else None.
        loop_filter: the frame's loop filter, or None when it has none.
    """

    frame_type: int
    latents: tuple[bytes, ...] = ()
    motion: Motion | None = None
    mask: np.ndarray | None = None
    loop_filter: loopfilter.LoopFilter | None = None

    def __post_init__(self) -> None:
        t = self.frame_type
        want_motion = None if t == bs.FRAME_KEY else motion.BiField if t in _BI else motion.MotionField
        if (want_motion is None) != (self.motion is None) or \
                (want_motion is not None and not isinstance(self.motion, want_motion)) or \
                (self.mask is not None) != (t in _WITH_RESIDUAL) or \
                (bool(self.latents) and t in _REBUILT):
            raise ValueError(f"syntax does not fit frame type {t}")

    @property
    def flags(self) -> int:
        """The FRAME_FLAG_* bits this syntax implies (the caller adds the coding scale's)."""
        return bs.FRAME_FLAG_FILTER if self.loop_filter is not None else 0

    def with_loop_filter(self, filt: loopfilter.LoopFilter) -> FrameSyntax:
        return FrameSyntax(self.frame_type, self.latents, self.motion, self.mask, filt)

    def side_information(self, distances: tuple[int, int] = (1, 1), direct: np.ndarray | None = None) -> bytes:
        """The version-4 side-information stream (motion, mask, loop filter: those present)."""
        enc = RangeEncoder()
        if isinstance(self.motion, motion.BiField):
            mvcoding.write_bi_motion(enc, self.motion, distances, direct)
        elif self.motion is not None:
            mvcoding.write_motion(enc, self.motion)
        if self.mask is not None:
            masking.write_mask(enc, self.mask)
        if self.loop_filter is not None:
            loopfilter.write(enc, self.loop_filter)
        return enc.finish()

    def to_segments(self, distances: tuple[int, int] = (1, 1),
                    direct: np.ndarray | None = None) -> tuple[bytes, ...]:
        """The unit's segments in format version 4 (module docstring); a bi frame's
        `distances` and `direct` vectors are those its motion is predicted with."""
        if self.frame_type == bs.FRAME_KEY and self.loop_filter is None:
            return tuple(self.latents)
        return (self.side_information(distances, direct), *self.latents)

    @staticmethod
    def segment_count(frame_type: int, filtered: bool, latent_strings: int, version: int = 4) -> int:
        """How many segments a frame of this type carries (`latent_strings`: the network's per frame)."""
        if version >= 4:
            if frame_type == bs.FRAME_KEY:
                return latent_strings + int(filtered)
            return 1 + (latent_strings if frame_type in _WITH_RESIDUAL else 0)
        return {bs.FRAME_KEY: latent_strings, bs.FRAME_INTER: 2 + latent_strings,
                bs.FRAME_REBUILT: 1}[frame_type] + int(filtered)

    @classmethod
    def from_segments(cls, unit: bs.FrameUnit, latent_strings: int, version: int, geo: Geometry,
                      distances: tuple[int, int] = (1, 1), direct: np.ndarray | None = None) -> FrameSyntax:
        """Read `unit`'s segments (a network with `latent_strings` strings per frame; format
        `version`) and decode its side information for a frame of geometry `geo` (bi
        frames: predicted with `distances` and `direct`, see `mvcoding.write_bi_motion`).

        Raises:
            BitstreamError: the segment count does not fit the frame type and flags, or
                the side information is not a valid stream.
            ValueError: impossible geometry.
        """
        t = unit.frame_type
        if version < 4 and t in _BI:
            raise BitstreamError(f"frame {unit.index}: bi frame in a version {version} stream")
        filtered = bool(unit.flags & bs.FRAME_FLAG_FILTER)
        expected = cls.segment_count(t, filtered, latent_strings, version)
        seg = unit.segments
        if len(seg) != expected:
            raise BitstreamError(f"frame {unit.index}: {len(seg)} segments, "
                                 f"expected {expected} for its frame type"
                                 + (" and its loop filter" if filtered else ""))
        if version < 4:
            return cls._from_parts(unit, seg, filtered, geo)
        has_side = t != bs.FRAME_KEY or filtered
        latents = tuple(seg[1:] if has_side else seg)
        mv = mask = filt = None
        if has_side:
            dec = RangeDecoder(seg[0])
            if t in _BI:
                mv = mvcoding.read_bi_motion(dec, geo.motion_shape, geo.motion_block, distances, direct)
            elif t != bs.FRAME_KEY:
                mv = mvcoding.read_motion(dec, geo.motion_shape, geo.motion_block)
            if t in _WITH_RESIDUAL:
                mask = masking.read_mask(dec, geo.latent_shape)
            if filtered:
                filt = loopfilter.read(dec)
            dec.finish()
        return cls(t, latents=latents, motion=mv, mask=mask, loop_filter=filt)

    @classmethod
    def _from_parts(cls, unit: bs.FrameUnit, seg: tuple[bytes, ...], filtered: bool,
                    geo: Geometry) -> FrameSyntax:
        """Versions 1-3: one segment per part."""
        filt = loopfilter.decode(seg[-1]) if filtered else None
        body = seg[:-1] if filtered else seg
        if unit.frame_type == bs.FRAME_KEY:
            return cls(bs.FRAME_KEY, latents=tuple(body), loop_filter=filt)
        mv = mvcoding.decode_motion(body[0], geo.motion_shape, geo.motion_block)
        if unit.frame_type == bs.FRAME_REBUILT:
            return cls(bs.FRAME_REBUILT, motion=mv, loop_filter=filt)
        return cls(bs.FRAME_INTER, latents=tuple(body[2:]), motion=mv,
                   mask=masking.decode_mask(body[1], geo.latent_shape), loop_filter=filt)
