"""Reconstruction: a frame's syntax -> the decoded frame. The decoder runs this, and so
does the encoder (closed loop), through the same `FrameDecoder`.

    key frame:       latents --intra network--> frame
    predicted frame: motion --compensate(reference)--> prediction
                     mask, latents --inter network (masked positions: the entropy
                     model's means)--> residual;  frame = prediction + residual - 128
    rebuilt frame:   motion --compensate(reference)--> frame
    bi frames:       as predicted / rebuilt, the prediction from two references, the
                     nearest decoded frames before and after in display order
                     (`motion.compensate_bi`: per block past, future or their mean)
    then, when present, the loop filter; at coding scale 2 the output is the
    exact 2x2 mean of the reconstruction, which stays the reference.

Frames of the upper layer (FRAME_FLAG_SCALE2) are coded at 2x, or, in a stream whose
header has CODING_FLAG_FINE, at native size by the model's fine networks (one latent
per 8x8 luma patch: `syntax.FINE_PATCH`).

The decoder owns the reference pictures; the networks are stateless. Every input
is validated before it reaches an entropy decoder, and every output frame must
match the encoder's hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcodec.codec import bitstream as bs
from mcodec.codec import loopfilter, motion, resample
from mcodec.codec.frame import Frame
from mcodec.codec.syntax import FINE_PATCH, PATCH, FrameSyntax, Geometry
from mcodec.codec.zoo import CodecNetworks, DecoderNetworks
from mcodec.errors import BitstreamError

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]
BI_TYPES = (bs.FRAME_BI_INTER, bs.FRAME_BI_REBUILT)
REBUILT_TYPES = (bs.FRAME_REBUILT, bs.FRAME_BI_REBUILT)


def to_tensor(planes: Planes, nets: CodecNetworks | DecoderNetworks):
    """(x, tensor geometry): the (1, 6, H/2, W/2) network input of YUV 4:2:0 planes, on the networks' device."""
    from mcodec.codec import packing

    x, geometry = packing.yuv420_to_tensor(*planes, stride=nets.tensor_stride)
    return x.to(nets.device), geometry


def to_planes(x, geometry) -> Planes:
    """The uint8 YUV 4:2:0 planes of a network output (cropped to the frame)."""
    from mcodec.codec import packing

    return packing.tensor_to_yuv420(x, geometry)


def tensor_geometry(g: Geometry):
    """The model's padding geometry of a coded frame."""
    from mcodec.codec import packing

    hp, wp = g.padded_shape
    return packing.FrameGeometry(g.height, g.width, hp, wp)


def residual_planes(cur: Frame, pred: Planes) -> Planes:
    """cur - pred + 128, clipped to uint8 (what the inter network codes)."""
    return tuple(np.clip(c.astype(np.int16) - p.astype(np.int16) + 128, 0, 255).astype(np.uint8)
                 for c, p in zip(cur.planes(), pred))  # type: ignore[return-value]


def add_residual(pred: Planes, res: Planes) -> Frame:
    """pred + res - 128, clipped: the reconstruction of a predicted frame."""
    y, u, v = (np.clip(p.astype(np.int16) + r.astype(np.int16) - 128, 0, 255).astype(np.uint8)
               for p, r in zip(pred, res))
    return Frame(y, u, v)


def source_at(frame: Frame, scale: int) -> Frame:
    """The frame as coded at `scale`: itself at 1, its `resample.upsample_frame` at 2."""
    return frame if scale == 1 else resample.upsample_frame(frame)


def output_at(coded: Frame, scale: int, width: int, height: int) -> Frame:
    """The displayed width x height frame of a reconstruction coded at `scale`."""
    return coded if scale == 1 else resample.downsample_frame(coded, width, height)


@dataclass(frozen=True)
class Picture:
    """A decoded picture kept for reference: the coded frame (before output scaling),
    its coding scale, and its own motion into its past reference (`field`,
    `distance` frames back; None for key frames), from which a bi frame that
    references it predicts its vectors (temporal direct); `fine`: coded by the
    fine networks."""

    frame: Frame
    scale: int
    field: motion.MotionField | None = None
    distance: int = 0
    fine: bool = False


class FrameDecoder:
    """Rebuilds frames from their syntax; used by the decoder *and* the encoder.

    Holds the decoded pictures later frames may reference (at their coding
    scale), by display index: a predicted frame references the decoded frame
    nearest before it in display order, a bi frame also the nearest after it.
    Pictures before the *frontier* (the last display index up to which every
    frame is decoded) can never be referenced again and are dropped, so the
    buffer holds at most the reorder depth + 1 pictures. The coding tools come
    from the stream's header flags, never from an encoder's settings.
    """

    def __init__(self, nets: DecoderNetworks, width: int, height: int, *, obmc: bool = False,
                 scale2: bool = False, loopfilter: bool = False, version: int = bs.FORMAT_VERSION,
                 fine: bool = False) -> None:
        self.nets = nets
        # The stream's format version: version 4 packs a frame's side information in
        # one range-coder stream and its latents in one rANS string (syntax.py).
        self.version = version
        self.packed = version >= 4
        self.width, self.height = width, height
        # display index -> (coded picture, its scale); None = lost (salvage), so
        # frames referencing it are lost too.
        self.pictures: dict[int, Picture | None] = {}
        self.frontier = -1
        # The stream's motion compensation (CODING_FLAG_OBMC in its header).
        self.compensate = motion.compensate_obmc if obmc else motion.compensate
        # Whether the header allows frames coded at 2x (CODING_FLAG_SCALE2).
        self.scale2 = scale2
        # Whether the header allows frames with a loop filter (CODING_FLAG_LOOPFILTER).
        self.loopfilter = loopfilter
        # The main networks code 16x16 patches, fine ones 8x8 (syntax.PATCH, FINE_PATCH).
        if nets.tensor_stride != PATCH // 2 or (nets.fine is not None
                                                 and nets.fine.tensor_stride != FINE_PATCH // 2):
            raise ValueError("the main networks need latent stride 16 and fine networks 8")
        # Whether the upper layer is the fine networks (CODING_FLAG_FINE).
        if fine and nets.fine is None:
            raise BitstreamError(f"the stream's upper layer needs fine networks, which model "
                                 f"{nets.model_id!r} does not have")
        self.fine = fine

    @classmethod
    def for_stream(cls, nets: DecoderNetworks, header: bs.SequenceHeader, format_version: int) -> FrameDecoder:
        """The frame decoder of a stream: its coding tools come from the header's flags,
        the frame syntax from `format_version` (`BitstreamReader.layout_version`)."""
        flags = header.coding.flags
        return cls(nets, header.width, header.height, obmc=bool(flags & bs.CODING_FLAG_OBMC),
                   scale2=bool(flags & bs.CODING_FLAG_SCALE2),
                   loopfilter=bool(flags & bs.CODING_FLAG_LOOPFILTER), version=format_version,
                   fine=bool(flags & bs.CODING_FLAG_FINE))

    def geometry(self, scale: int, fine: bool = False) -> Geometry:
        """The coded frame's sizes at `scale` (by the fine networks when `fine`)."""
        return Geometry(self.height * scale, self.width * scale, scale,
                        FINE_PATCH if fine else PATCH)

    def layer(self, nets: DecoderNetworks | CodecNetworks, fine: bool):
        """The networks of a layer: the model's fine networks when `fine`, else `nets`."""
        return nets.fine if fine else nets

    def output(self, coded: Frame, scale: int) -> Frame:
        """The displayed frame of a reconstruction at coding scale `scale`."""
        return output_at(coded, scale, self.width, self.height)

    # -- the picture buffer ------------------------------------------------------

    def store(self, display: int, picture: Picture | None, key: bool = False) -> None:
        """Keep the coded picture of display index `display` (None: lost).

        A key frame is a cut point (closed GOPs): everything before it is done."""
        if key:
            self.pictures = {d: p for d, p in self.pictures.items() if d > display}
            self.frontier = max(self.frontier, display - 1)
        self.pictures[display] = picture
        while self.frontier + 1 in self.pictures:
            self.frontier += 1
        for d in [d for d in self.pictures if d < self.frontier]:
            del self.pictures[d]

    def neighbours(self, display: int) -> tuple[int | None, int | None]:
        """Display indexes of the buffered pictures nearest before and after `display`."""
        before = [d for d in self.pictures if d < display]
        after = [d for d in self.pictures if d > display]
        return (max(before) if before else None), (min(after) if after else None)

    def references(self, unit: bs.FrameUnit) -> list[int]:
        """Display indexes of the pictures `unit` predicts from (empty for a key frame).

        Raises:
            BitstreamError: a reference the frame needs is not there.
        """
        if unit.frame_type == bs.FRAME_KEY:
            return []
        before, after = self.neighbours(unit.display)
        bi = unit.frame_type in BI_TYPES
        if before is None or (bi and after is None):
            raise BitstreamError(f"frame {unit.index}: predicted frame without "
                                 f"{'a past' if before is None else 'a future'} reference")
        return [before, after] if bi else [before]

    def references_lost(self, unit: bs.FrameUnit) -> bool:
        """Whether a reference of `unit` is missing or was lost (salvage: the frame is lost too)."""
        try:
            return any(self.pictures[d] is None for d in self.references(unit))
        except BitstreamError:
            return True

    # -- decoding ----------------------------------------------------------------

    def decode(self, unit: bs.FrameUnit) -> Frame:
        """Reconstruct `unit`, keep it as a reference, return the output frame (hash-checked).

        The full 16-byte hash of the output is left in `last_hash` (streams of
        version 4 carry its first 4 bytes per frame, version 5 its first 3, and both a digest
        of all of them).
        """
        import torch

        if not 0 <= unit.quality < self.nets.levels:
            raise BitstreamError(f"frame {unit.index}: quality {unit.quality} outside "
                                 f"0..{self.nets.levels - 1} of this model")
        if unit.flags & ~bs.KNOWN_FRAME_FLAGS:
            raise BitstreamError(f"frame {unit.index}: unknown frame flags 0x{unit.flags:02x}")
        upper = bool(unit.flags & bs.FRAME_FLAG_SCALE2)
        if upper and not (self.scale2 or self.fine):
            raise BitstreamError(f"frame {unit.index}: coded in the upper layer in a stream whose "
                                 "header does not allow it")
        fine = upper and self.fine
        scale = 2 if upper and not fine else 1
        nets = self.layer(self.nets, fine)
        net = nets.intra if unit.frame_type == bs.FRAME_KEY else nets.inter
        if unit.flags & bs.FRAME_FLAG_FILTER and not self.loopfilter:
            raise BitstreamError(f"frame {unit.index}: loop filter in a stream whose header "
                                 "does not allow it")
        refs = []
        ref_displays = self.references(unit)
        distances = reference_distances(unit.display, ref_displays)
        for d in ref_displays:
            picture = self.pictures[d]
            if picture is None:
                raise BitstreamError(f"frame {unit.index}: its reference (display {d}) was lost")
            if picture.scale != scale or picture.fine != fine:
                raise BitstreamError(f"frame {unit.index}: predicted frame and its reference "
                                     "are in different coding layers")
            refs.append(picture)
        geo = self.geometry(scale, fine)
        try:
            direct = self.direct(refs, distances) if len(refs) == 2 else None
            syntax = FrameSyntax.from_segments(unit, net.strings_per_frame(self.packed), self.version,
                                               geo, distances, direct)
            with torch.no_grad():
                coded = self.reconstruct(syntax, unit.quality, geo, refs, nets)
            if syntax.loop_filter is not None:
                coded = Frame(*loopfilter.apply(coded.planes(), syntax.loop_filter))
        except BitstreamError:
            raise
        except (ValueError, RuntimeError) as exc:
            # An entropy-decoder or shape failure on data whose CRC was fine.
            raise BitstreamError(f"frame {unit.index}: undecodable payload ({exc})") from None
        frame = self.output(coded, scale)
        full = bs.frame_hash(*frame.planes())
        if full[:len(unit.frame_hash)] != unit.frame_hash:
            raise BitstreamError(
                f"frame {unit.index}: decoded frame does not match the encoder's reconstruction "
                "(hash mismatch): the stream is damaged or was made on an incompatible platform")
        self.last_hash = full
        self.store(unit.display, Picture(coded, scale, forward_field(syntax), distances[0], fine),
                   key=unit.frame_type == bs.FRAME_KEY)
        return frame

    @staticmethod
    def direct(refs: list[Picture], distances: tuple[int, int]):
        """The temporal direct forward vectors of a bi frame (`motion.direct_vectors`) from its
        future reference's own field, or None when that reference has none (a key frame)."""
        future = refs[1]
        if future.field is None:
            return None
        return motion.direct_vectors(future.field, future.distance, distances[0])

    def predict(self, syntax: FrameSyntax, refs: list[Picture]) -> Planes:
        """The motion-compensated prediction of a predicted or bi frame from its references."""
        if isinstance(syntax.motion, motion.BiField):
            return motion.compensate_bi(refs[0].frame.planes(), refs[1].frame.planes(), syntax.motion,
                                        self.compensate)
        assert syntax.motion is not None
        return self.compensate(*refs[0].frame.planes(), syntax.motion)

    def reconstruct(self, syntax: FrameSyntax, quality: int, geo: Geometry, refs: list[Picture],
                    nets: DecoderNetworks | None = None) -> Frame:
        """The reconstruction of a frame's syntax before any loop filter (at coding scale),
        by `nets` (default: the model's main networks)."""
        nets = nets or self.nets
        hy, wy = geo.latent_shape
        if syntax.frame_type == bs.FRAME_KEY:
            x_hat = nets.intra.decompress(syntax.latents, (hy, wy), quality, packed=self.packed)
            return Frame(*to_planes(x_hat, tensor_geometry(geo)))
        pred = self.predict(syntax, refs)
        if syntax.frame_type in REBUILT_TYPES:
            return Frame(*pred)
        assert syntax.mask is not None
        import torch

        r_hat = nets.inter.decompress(syntax.latents, (hy, wy), quality,
                                           mask=torch.from_numpy(syntax.mask), packed=self.packed)
        return add_residual(pred, to_planes(r_hat, tensor_geometry(geo)))


def reference_distances(display: int, references: list[int]) -> tuple[int, int]:
    """Frames from `display` back to its past reference and on to its future one (0 where
    there is none: a key frame has neither, a predicted frame no future one)."""
    past = display - references[0] if references else 0
    return past, (references[1] - display if len(references) == 2 else 0)


def forward_field(syntax: FrameSyntax) -> motion.MotionField | None:
    """A frame's motion into its past reference (what later bi frames predict from), if any."""
    if isinstance(syntax.motion, motion.BiField):
        return syntax.motion.forward
    return syntax.motion
