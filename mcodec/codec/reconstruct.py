"""Reconstruction: a frame's syntax -> the decoded frame. The decoder runs this, and so
does the encoder (closed loop), through the same `FrameDecoder`.

    key frame:       latents --intra network--> frame
    predicted frame: motion --compensate(reference)--> prediction
                     mask, latents --inter network (masked positions: the entropy
                     model's means)--> residual;  frame = prediction + residual - 128
    rebuilt frame:   motion --compensate(reference)--> frame
    then, when present, the loop filter; at coding scale 2 the output is the
    exact 2x2 mean of the reconstruction, which stays the reference.

The decoder owns the reference frame; the networks are stateless. Every input
is validated before it reaches an entropy decoder, and every output frame must
match the encoder's hash.
"""

from __future__ import annotations

import numpy as np

from mcodec.codec import bitstream as bs
from mcodec.codec import loopfilter, masking, motion, resample
from mcodec.codec.frame import Frame
from mcodec.codec.syntax import FrameSyntax, Geometry
from mcodec.codec.zoo import CodecNetworks
from mcodec.errors import BitstreamError

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


def to_tensor(planes: Planes, nets: CodecNetworks):
    """(x, tensor geometry): the (1, 6, H/2, W/2) network input of YUV 4:2:0 planes, on the networks' device."""
    from mcodec.codec import packing

    x, geometry = packing.yuv420_to_tensor(*planes)
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


class FrameDecoder:
    """Rebuilds frames from their syntax; used by the decoder *and* the encoder.

    Holds the reference (previous reconstruction, at its coding scale). The
    coding tools come from the stream's header flags, never from an encoder's
    settings.
    """

    def __init__(self, nets: CodecNetworks, width: int, height: int, *, obmc: bool = False,
                 scale2: bool = False, loopfilter: bool = False) -> None:
        self.nets = nets
        self.width, self.height = width, height
        self.reference: Frame | None = None
        self.reference_scale = 1
        # The stream's motion compensation (CODING_FLAG_OBMC in its header).
        self.compensate = motion.compensate_obmc if obmc else motion.compensate
        # Whether the header allows frames coded at 2x (CODING_FLAG_SCALE2).
        self.scale2 = scale2
        # Whether the header allows frames with a loop filter (CODING_FLAG_LOOPFILTER).
        self.loopfilter = loopfilter

    @classmethod
    def for_stream(cls, nets: CodecNetworks, header: bs.SequenceHeader) -> FrameDecoder:
        """The frame decoder of a stream: its coding tools come from the header's flags."""
        flags = header.coding.flags
        return cls(nets, header.width, header.height, obmc=bool(flags & bs.CODING_FLAG_OBMC),
                   scale2=bool(flags & bs.CODING_FLAG_SCALE2),
                   loopfilter=bool(flags & bs.CODING_FLAG_LOOPFILTER))

    def geometry(self, scale: int) -> Geometry:
        return Geometry(self.height * scale, self.width * scale, scale)

    def output(self, coded: Frame, scale: int) -> Frame:
        """The displayed frame of a reconstruction at coding scale `scale`."""
        return output_at(coded, scale, self.width, self.height)

    def decode(self, unit: bs.FrameUnit) -> Frame:
        """Reconstruct `unit`, make it the reference for the next frame, return the output frame."""
        import torch

        if not 0 <= unit.quality < self.nets.levels:
            raise BitstreamError(f"frame {unit.index}: quality {unit.quality} outside "
                                 f"0..{self.nets.levels - 1} of this model")
        if unit.flags & ~bs.KNOWN_FRAME_FLAGS:
            raise BitstreamError(f"frame {unit.index}: unknown frame flags 0x{unit.flags:02x}")
        latent_strings = (self.nets.intra if unit.frame_type == bs.FRAME_KEY else self.nets.inter).num_strings
        syntax = FrameSyntax.from_segments(unit, latent_strings)
        scale = 2 if unit.flags & bs.FRAME_FLAG_SCALE2 else 1
        if scale == 2 and not self.scale2:
            raise BitstreamError(f"frame {unit.index}: coded at 2x in a stream whose header "
                                 "does not allow it")
        if syntax.loop_filter is not None and not self.loopfilter:
            raise BitstreamError(f"frame {unit.index}: loop filter in a stream whose header "
                                 "does not allow it")
        if unit.frame_type != bs.FRAME_KEY:
            if self.reference is None:
                raise BitstreamError(f"frame {unit.index}: predicted frame without a reference")
            if scale != self.reference_scale:
                raise BitstreamError(f"frame {unit.index}: predicted frame at scale {scale}, "
                                     f"its reference at {self.reference_scale}")
        try:
            with torch.no_grad():
                coded = self.reconstruct(syntax, unit.quality, self.geometry(scale))
            if syntax.loop_filter is not None:
                coded = Frame(*loopfilter.apply(coded.planes(), loopfilter.decode(syntax.loop_filter)))
        except BitstreamError:
            raise
        except (ValueError, RuntimeError) as exc:
            # An entropy-decoder or shape failure on data whose CRC was fine.
            raise BitstreamError(f"frame {unit.index}: undecodable payload ({exc})") from None
        frame = self.output(coded, scale)
        if bs.frame_hash(*frame.planes()) != unit.frame_hash:
            raise BitstreamError(
                f"frame {unit.index}: decoded frame does not match the encoder's reconstruction "
                "(hash mismatch): the stream is damaged or was made on an incompatible platform")
        self.reference, self.reference_scale = coded, scale
        return frame

    def reconstruct(self, syntax: FrameSyntax, quality: int, geo: Geometry) -> Frame:
        """The reconstruction of a frame's syntax before any loop filter (at coding scale)."""
        hy, wy = geo.latent_shape
        if syntax.frame_type == bs.FRAME_KEY:
            x_hat = self.nets.intra.decompress(syntax.latents, (hy, wy), quality)
            return Frame(*to_planes(x_hat, tensor_geometry(geo)))
        assert self.reference is not None and syntax.motion is not None
        field = motion.decode_motion(syntax.motion, geo.motion_shape, geo.motion_block)
        pred = self.compensate(*self.reference.planes(), field)
        if syntax.frame_type == bs.FRAME_REBUILT:
            return Frame(*pred)
        assert syntax.mask is not None
        mask = masking.decode_mask(syntax.mask, (hy, wy))
        import torch

        r_hat = self.nets.inter.decompress(syntax.latents, (hy, wy), quality,
                                           mask=torch.from_numpy(mask))
        return add_residual(pred, to_planes(r_hat, tensor_geometry(geo)))
