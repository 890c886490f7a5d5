"""The syntax of one coded frame: what its container segments mean, in one place.

A FRAME unit (`mcodec.codec.bitstream.FrameUnit`) carries opaque segments; this
module gives them their layout, for the writer (`FrameSyntax.to_segments`) and
the reader (`FrameSyntax.from_segments`, which validates before anything is
entropy-decoded). "Latent strings" are the network's rANS strings (with the
checkerboard context: y anchors, y non-anchors, z):

    key frame:       (*latent strings,                [loop filter])
    predicted frame: (motion, mask, *latent strings,  [loop filter])
    rebuilt frame:   (motion,                         [loop filter])
    bi-inter frame:  as predicted, with bi motion (`motion.encode_bi_motion`)
    bi-rebuilt:      as rebuilt, with bi motion

the loop filter present exactly when the frame's FRAME_FLAG_FILTER is set.
Also here: the format's geometry constants (patch and motion-block sizes) and
the sizes of a coded frame, which both sides derive alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcodec.codec import bitstream as bs
from mcodec.codec import motion
from mcodec.errors import BitstreamError

_WITH_RESIDUAL = (bs.FRAME_INTER, bs.FRAME_BI_INTER)   # predicted frames carrying a mask and latents
_REBUILT = (bs.FRAME_REBUILT, bs.FRAME_BI_REBUILT)      # predicted frames with motion only

PATCH = 16            # luma pixels per latent position (network stride 8 on the half-res tensor)
MOTION_BLOCK = 16     # luma block size of motion vectors at coding scale 1


@dataclass(frozen=True)
class Geometry:
    """Sizes of the coded frame (identical on both sides).

    Attributes:
        height, width: luma size of the frame as coded (`scale` x the output size).
        scale: coding scale, 1 or 2 (motion blocks scale with it, so a 2x frame
            has as many vectors as a 1x one).
    """

    height: int
    width: int
    scale: int = 1

    @property
    def latent_shape(self) -> tuple[int, int]:
        """(rows, cols) of the patch / latent grid: frames are padded to whole patches."""
        return -(-self.height // PATCH), -(-self.width // PATCH)

    @property
    def padded_shape(self) -> tuple[int, int]:
        """(rows, cols) luma pixels of the frame padded to whole patches."""
        rows, cols = self.latent_shape
        return rows * PATCH, cols * PATCH

    @property
    def motion_block(self) -> int:
        return MOTION_BLOCK * self.scale

    @property
    def motion_shape(self) -> tuple[int, int]:
        return motion.blocks_shape(self.height, self.width, self.motion_block)


@dataclass(frozen=True)
class FrameSyntax:
    """The coded content of one frame, by meaning.

    Attributes:
        frame_type: bs.FRAME_KEY, FRAME_INTER, FRAME_REBUILT, FRAME_BI_INTER or FRAME_BI_REBUILT.
        latents: the network's rANS strings (key and predicted frames; empty for rebuilt).
        motion: the coded motion field (predicted and rebuilt frames), else None.
        mask: the coded mask map (predicted frames), else None.
        loop_filter: the coded loop filter, or None when the frame has none.
    """

    frame_type: int
    latents: tuple[bytes, ...] = ()
    motion: bytes | None = None
    mask: bytes | None = None
    loop_filter: bytes | None = None

    def __post_init__(self) -> None:
        has_motion = self.frame_type != bs.FRAME_KEY
        if (self.motion is not None) != has_motion or \
                (self.mask is not None) != (self.frame_type in _WITH_RESIDUAL) or \
                (bool(self.latents) and self.frame_type in _REBUILT):
            raise ValueError(f"segments do not fit frame type {self.frame_type}")

    @property
    def flags(self) -> int:
        """The FRAME_FLAG_* bits this syntax implies (the caller adds the coding scale's)."""
        return bs.FRAME_FLAG_FILTER if self.loop_filter is not None else 0

    def with_loop_filter(self, coded: bytes) -> FrameSyntax:
        return FrameSyntax(self.frame_type, self.latents, self.motion, self.mask, coded)

    def to_segments(self) -> tuple[bytes, ...]:
        """The unit's segments, in the order of the module docstring."""
        head = (self.motion, self.mask) if self.frame_type in _WITH_RESIDUAL else \
            (self.motion,) if self.frame_type in _REBUILT else ()
        tail = (self.loop_filter,) if self.loop_filter is not None else ()
        return (*head, *self.latents, *tail)  # type: ignore[arg-type]

    @staticmethod
    def segment_count(frame_type: int, filtered: bool, latent_strings: int) -> int:
        """How many segments a frame of this type carries (`latent_strings`: the network's)."""
        return {bs.FRAME_KEY: latent_strings, bs.FRAME_INTER: 2 + latent_strings,
                bs.FRAME_REBUILT: 1, bs.FRAME_BI_INTER: 2 + latent_strings,
                bs.FRAME_BI_REBUILT: 1}[frame_type] + int(filtered)

    @classmethod
    def from_segments(cls, unit: bs.FrameUnit, latent_strings: int) -> FrameSyntax:
        """Read `unit`'s segments (a network with `latent_strings` strings per frame).

        Raises:
            BitstreamError: the segment count does not fit the frame type and flags.
        """
        filtered = bool(unit.flags & bs.FRAME_FLAG_FILTER)
        expected = cls.segment_count(unit.frame_type, filtered, latent_strings)
        seg = unit.segments
        if len(seg) != expected:
            raise BitstreamError(f"frame {unit.index}: {len(seg)} segments, "
                                 f"expected {expected} for its frame type"
                                 + (" and its loop filter" if filtered else ""))
        lf = seg[-1] if filtered else None
        body = seg[:-1] if filtered else seg
        if unit.frame_type == bs.FRAME_KEY:
            return cls(bs.FRAME_KEY, latents=tuple(body), loop_filter=lf)
        if unit.frame_type in _REBUILT:
            return cls(unit.frame_type, motion=body[0], loop_filter=lf)
        return cls(unit.frame_type, latents=tuple(body[2:]), motion=body[0], mask=body[1], loop_filter=lf)
