"""Encode and decode dataflow, top-down.

    encode: frames -> [key frame: intra network]
                      [predicted frame: motion search -> integer (overlapped) motion compensation
                       -> per-patch mask decision -> residual network on visible patches]
                   -> container units (with the hash of each reconstructed frame)
    decode: container units -> the same reconstruction -> frames (hash verified)

The encoder reconstructs every frame exactly as the decoder will and uses that
reconstruction as the next frame's reference (closed loop). Both sides share
`FrameDecoder`, and each frame unit carries the BLAKE2b hash of the encoder's
reconstruction, so a decoder proves it reproduced it.

Patches and masks: a patch is 16x16 luma pixels (8x8 of each chroma plane),
which is exactly one position of the networks' latent grid. In a predicted
frame a *masked* patch sends no latent symbols: the decoder rebuilds it from the
motion-compensated previous frame and from the visible latents around it (the
synthesis transform sees the masked positions as the entropy model's means).
The encoder masks a patch when, at the chosen quality, the prediction is as good
as coding it (rate-distortion decision with the training lambda); the mask map
itself is entropy-coded. A predicted frame whose patches are all masked is sent
as motion only (frame type "rebuilt").

Per-frame segments in the container (see docs/bitstream.md for the framing);
"latent strings" are the network's rANS strings (with the checkerboard context:
y anchors, y non-anchors, z):
    key frame:       (*latent strings,)
    predicted frame: (motion, mask, *latent strings)
    rebuilt frame:   (motion,)
"""

from __future__ import annotations

import os
import sys
import functools
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import numpy as np

from mcodec.codec import bitstream as bs
from mcodec.codec import ladder, loopfilter, masking, motion, resample
from mcodec.codec import zoo
from mcodec.codec.video_io import Frame, open_video, open_writer, publish
from mcodec.errors import BitstreamError, McodecError, ModelError
# The encoder's summary PSNR uses the bench's metric code (one path for every codec).
from mcodec.eval.metrics import frame_psnr_yuv

PATCH = 16            # luma pixels per latent position (network stride 8 on the half-res tensor)
MOTION_BLOCK = 16     # luma block size of motion vectors
SEARCH_RANGE = 16     # integer search range, luma pixels
# Key frames are coded this many quality levels above the GOP's level (clamped):
# every predicted frame inherits the key frame's quality, as in x264's I-frame QP
# offset. Tuned on training clips only (benchmarks/tune_encoder.py key 0,2):
# +2 gave +0.1..1.2 dB at equal rate over +0.
KEY_QUALITY_OFFSET = 2
# Multiplier on the training lambda's rate weight (1/lambda, SSE per bit) in the encoder's
# masking decisions; > 1 favours masking. Measured on training clips only
# (benchmarks/tune_encoder.py masklam ..., mcodec-s2, 32 frames, q0..7): x2 gave -3.5 %,
# -0.7 %, -3.3 % BD-rate on carphone, bikes, bigbuckbunny, x4 and x8 lost; but x2 made
# rate non-monotonic in the quality level on the bench's synthetic clip (q0 1678 bytes,
# q2 1657), which the levels must never be. Kept at x1.
MASK_LAMBDA_SCALE = 1.0
# Predicted frames use overlapped block motion compensation (header flag
# CODING_FLAG_OBMC). Measured on training clips only (benchmarks/tune_encoder.py
# obmc 0,1, mcodec-s2, 32 frames, q0..7): -7.5 % BD-rate on bigbuckbunny, -6.3 %
# on bikes, +1.2 % on carphone (little motion: few differing neighbours).
USE_OBMC = True
# A predicted frame whose motion-compensated prediction is below this PSNR-YUV (dB)
# may be a scene cut: the encoder then also estimates coding it as a key frame and
# does so when that is cheaper in J = D + lambda*R (the predicted-frame path has no
# intra patches, so new content costs it several times a key frame). The threshold
# only bounds the work: the choice itself is the J comparison. On the training clips,
# predictions of ordinary frames were >= 31.8 dB and bikes' cut 16.7 dB.
SCENE_CUT_PSNR = 25.0
# Weighted SSE of the training loss: lambda * (6*SSE_y + 4*SSE_u + 4*SSE_v) / 8 + bits,
# i.e. 0.75 * (SSE_y + 2/3 * (SSE_u + SSE_v)); see mcodec.codec.train.
_LUMA_SHARE, _CHROMA_WEIGHT = 0.75, 2.0 / 3.0


# Coding scales the encoder may choose from (tune_encoder.py restricts them to compare).
CODING_SCALES: tuple[int, ...] = (1, 2)
# The GOP goes to 2x when the key frame's J at 2x is below SCALE_J_BIAS times its J at
# 1x (> 1 leans toward 2x, whose predicted frames the key-frame test does not see).
# Training clips, 16 frames, q0..9 (tune_encoder.py scalebias 1,1.15,1.3): 1.15 gave
# -8.1 % BD-rate on bigbuckbunny, -5.0 % carphone, 0.0 % bikes; 1.3 cost bikes +10.0 %.
SCALE_J_BIAS = 1.15
# Frames may carry a Wiener loop filter (mcodec.codec.loopfilter, header flag
# CODING_FLAG_LOOPFILTER, bitstream version 3), sent when it pays in J.
USE_LOOP_FILTER = True


def quality_ladder(levels: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """(coding scale, model level) candidates of each --quality value; see `mcodec.codec.ladder`."""
    return ladder.quality_ladder(levels)


def encoder_settings() -> dict[str, float]:
    """The encoder's tuned constants by name; a result cache keyed on them re-codes when one changes."""
    return {"key_quality_offset": KEY_QUALITY_OFFSET, "mask_lambda_scale": MASK_LAMBDA_SCALE,
            "motion_block": MOTION_BLOCK, "search_range": SEARCH_RANGE, "obmc": int(USE_OBMC),
            "scene_cut_psnr": SCENE_CUT_PSNR, "coding_scales": ".".join(map(str, CODING_SCALES)),
            "level_shift_2x": ladder.LEVEL_SHIFT_2X, "scale_choice": "gop-crossover",
            "scale_j_bias": SCALE_J_BIAS, "decision_chroma_weight": _CHROMA_WEIGHT,
            "loop_filter": int(USE_LOOP_FILTER)}


# ----------------------------------------------------------------------------- options and results


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode.

    Attributes:
        quality: index into `quality_ladder` (0 = smallest file); ignored when `bitrate` is set.
        bitrate: target in kbit/s for the whole clip (quality chosen per GOP), or None.
        gop: key-frame interval in frames (>= 1).
        mask: "auto" (rate-distortion decision per patch), "off" (code every
            patch), or a ratio in [0, 1] (that fraction of patches of each
            predicted frame masked, the worst-predicted ones kept).
        frames: encode at most this many frames (None = all).
    """

    quality: int = 4
    bitrate: float | None = None
    gop: int = 32
    mask: str | float = "auto"
    frames: int | None = None

    def __post_init__(self) -> None:
        if self.gop < 1:
            raise McodecError(f"--gop must be >= 1, got {self.gop}")
        if self.bitrate is not None and not self.bitrate > 0:
            raise McodecError(f"--bitrate must be > 0 kbit/s, got {self.bitrate}")
        if self.frames is not None and self.frames < 1:
            raise McodecError(f"--frames must be >= 1, got {self.frames}")
        if isinstance(self.mask, str):
            if self.mask not in ("auto", "off"):
                raise McodecError(f"--mask must be auto, off or a ratio in [0, 1], got {self.mask!r}")
        elif not 0.0 <= float(self.mask) <= 1.0:
            raise McodecError(f"--mask ratio must be in [0, 1], got {self.mask}")


def parse_mask(text: str) -> str | float:
    """CLI value of --mask: 'auto', 'off' or a ratio."""
    if text in ("auto", "off"):
        return text
    try:
        return float(text)
    except ValueError:
        raise McodecError(f"--mask must be auto, off or a ratio in [0, 1], got {text!r}") from None


@dataclass(frozen=True)
class EncodeSummary:
    """What `encode` did. Rates come from the real size of the written file."""

    frames: int
    width: int
    height: int
    fps: Fraction
    bytes: int
    seconds: float
    psnr_yuv: float          # mean over frames of (6*PSNR_Y + PSNR_U + PSNR_V)/8, dB (vs source)
    qualities: tuple[int, ...]  # quality used per GOP
    masked_fraction: float   # masked patches / patches of predicted frames
    scene_cuts: int = 0      # frames coded as key frames off the --gop grid (scene cuts)

    @property
    def kbps(self) -> float:
        return self.bytes * 8 / 1000 * float(self.fps) / max(self.frames, 1)

    @property
    def bpp(self) -> float:
        return self.bytes * 8 / max(self.frames * self.width * self.height, 1)

    def line(self) -> str:
        """The one-line summary `mcodec encode` prints."""
        q = ",".join(str(q) for q in sorted(set(self.qualities)))
        return (f"{self.frames} frames {self.width}x{self.height} @ {float(self.fps):.3g} fps: "
                f"{self.bytes} bytes, {self.kbps:.1f} kbps, {self.bpp:.4f} bpp, "
                f"PSNR-YUV {self.psnr_yuv:.2f} dB, quality {q}, "
                f"{100 * self.masked_fraction:.0f}% of P-frame patches masked, "
                + (f"{self.scene_cuts} scene cut(s) coded as key frames, " if self.scene_cuts else "")
                + f"{self.frames / max(self.seconds, 1e-9):.2f} fps")


@dataclass(frozen=True)
class DecodeSummary:
    """What `decode` did."""

    frames: int
    width: int
    height: int
    seconds: float
    lost_frames: tuple[int, ...] = ()  # --keep-going: frames concealed (not decoded)
    damage: tuple[str, ...] = ()       # --keep-going: what was wrong, where

    def line(self) -> str:
        lost = (f", {len(self.lost_frames)} lost frames concealed ({_ranges(self.lost_frames)})"
                if self.lost_frames else "")
        return (f"{self.frames} frames {self.width}x{self.height} decoded, hashes verified"
                f"{lost}, {self.frames / max(self.seconds, 1e-9):.2f} fps")


def _ranges(indexes: tuple[int, ...]) -> str:
    """'0-3,7,9-10' for (0, 1, 2, 3, 7, 9, 10)."""
    out: list[list[int]] = []
    for i in indexes:
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in out)


# ----------------------------------------------------------------------------- networks


@dataclass(frozen=True, eq=False)
class CodecNetworks:
    """The two learned transforms of one model, and its identity.

    Attributes:
        intra: codes key frames (6-channel YUV 4:2:0 tensor).
        inter: same architecture, codes motion-compensated residuals.
        lambdas: training rate-distortion weight per quality level.
        model_id, digest: what the container records (zoo id, SHA-256 of the weights).
    """

    intra: object
    inter: object
    lambdas: tuple[float, ...]
    model_id: str
    digest: bytes

    @property
    def levels(self) -> int:
        return len(self.lambdas)


def load_networks(model_id: str | None = None, device: str = "cpu",
                  digest: bytes | None = None) -> CodecNetworks:
    """Networks of a model in the zoo (by id, or by the id+digest a stream names)."""
    entry = zoo.find_model(model_id or "", digest) if digest is not None else zoo.get_model(model_id)
    tensors, metadata = zoo.load_weights(entry)
    return networks_from_tensors(tensors, metadata, entry.model_id, entry.digest, device)


def networks_from_tensors(tensors: dict, metadata: dict[str, str], model_id: str, digest: bytes,
                          device: str = "cpu") -> CodecNetworks:
    """Build `CodecNetworks` from a bundle's tensors ("intra.*", "inter.*") and metadata."""
    from mcodec.codec import model as mdl

    import json

    try:
        config = mdl.ModelConfig.from_json(metadata["config"])
        lambdas = tuple(float(x) for x in json.loads(metadata["lambdas"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"model {model_id!r}: bad bundle metadata ({exc})") from None
    nets = []
    for prefix in ("intra.", "inter."):
        net = mdl.IntraCodec(config)
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        net.load_state_dict(state, strict=True)
        nets.append(net.to(device).eval())
    if len(lambdas) != config.levels:
        raise ModelError(f"model {model_id!r}: {len(lambdas)} lambdas for {config.levels} levels")
    return CodecNetworks(nets[0], nets[1], lambdas, model_id, digest)


def networks_from_file(path: str, model_id: str = "local", device: str = "cpu") -> CodecNetworks:
    """Networks from a bundle file outside the model table (training, tests); digest computed."""
    import hashlib
    from pathlib import Path

    from safetensors.torch import load

    data = Path(path).read_bytes()
    return networks_from_tensors(load(data), zoo.safetensors_metadata(data), model_id,
                                 hashlib.sha256(data).digest(), device)


def _canonical_safetensors(data: bytes) -> bytes:
    """`data` (a safetensors file) with its metadata keys sorted.

    safetensors writes ``__metadata__`` from a hash map, so the same tensors and
    metadata can come out in either key order, and the file's SHA-256 (which the
    model table pins) would depend on the run. The header is rewritten as compact
    JSON, metadata first with sorted keys, tensor entries in their original order,
    space-padded to 8 bytes as the format asks; the tensor bytes are untouched
    (their offsets are relative to the end of the header).
    """
    import json
    import struct

    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    if "__metadata__" in header:
        out["__metadata__"] = dict(sorted(header.pop("__metadata__").items()))
    out.update(header)
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def save_bundle(intra, inter, lambdas: tuple[float, ...], path: str) -> str:
    """Write the two networks as one safetensors bundle; return its hex SHA-256.

    Layout: tensors "intra.*" and "inter.*" (state dicts, CDF tables included:
    call `update()` on both first), metadata "config" (ModelConfig JSON) and
    "lambdas" (JSON list, one per quality level). Written atomically.
    """
    import hashlib
    import json

    from safetensors.torch import save

    if intra.config != inter.config:
        raise ValueError("intra and inter networks must share one ModelConfig")
    tensors = {f"{prefix}.{k}": v.detach().cpu().contiguous()
               for prefix, net in (("intra", intra), ("inter", inter))
               for k, v in net.state_dict().items()}
    data = _canonical_safetensors(save(tensors, metadata={
        "config": intra.config.to_json(), "lambdas": json.dumps([float(x) for x in lambdas])}))
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".bundle.", suffix=".partial", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; weights ship as ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- frame coding


@dataclass(frozen=True)
class _Geometry:
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
        # Frames are padded to a multiple of 2*STRIDE=16 luma pixels = PATCH.
        return -(-self.height // PATCH), -(-self.width // PATCH)

    @property
    def motion_block(self) -> int:
        return MOTION_BLOCK * self.scale

    @property
    def motion_shape(self) -> tuple[int, int]:
        return motion.blocks_shape(self.height, self.width, self.motion_block)


def _to_tensor(planes: tuple[np.ndarray, np.ndarray, np.ndarray], device: str):
    from mcodec.codec import model as mdl

    x, geometry = mdl.yuv420_to_tensor(*planes)
    return x.to(device), geometry


def _to_planes(x, geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from mcodec.codec import model as mdl

    return mdl.tensor_to_yuv420(x, geometry)


def _residual_planes(cur: Frame, pred: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """cur - pred + 128, clipped to uint8 (what the inter network codes)."""
    return tuple(np.clip(c.astype(np.int16) - p.astype(np.int16) + 128, 0, 255).astype(np.uint8)
                 for c, p in zip(cur.planes(), pred))


def _add_residual(pred: tuple[np.ndarray, ...], res: tuple[np.ndarray, ...]) -> Frame:
    """pred + res - 128, clipped: the reconstruction of a predicted frame."""
    y, u, v = (np.clip(p.astype(np.int16) + r.astype(np.int16) - 128, 0, 255).astype(np.uint8)
               for p, r in zip(pred, res))
    return Frame(y, u, v)


def _weighted_patch_sse(a, b) -> np.ndarray:
    """(rows, cols) per-patch distortion in the training loss's units (weighted SSE)."""
    return _LUMA_SHARE * masking.patch_sse(a, b, PATCH, chroma_weight=_CHROMA_WEIGHT)


class FrameDecoder:
    """Rebuilds frames from their syntax; used by the decoder *and* the encoder.

    Holds the reference (previous reconstruction, at its coding scale). All
    inputs are validated before they reach an entropy decoder.
    """

    def __init__(self, nets: CodecNetworks, width: int, height: int, device: str = "cpu",
                 obmc: bool = False, scale2: bool = False, loopfilter: bool = False) -> None:
        self.nets, self.device = nets, device
        self.width, self.height = width, height
        self.reference: Frame | None = None
        self.reference_scale = 1
        # The stream's motion compensation (CODING_FLAG_OBMC in its header).
        self.compensate = motion.compensate_obmc if obmc else motion.compensate
        # Whether the header allows frames coded at 2x (CODING_FLAG_SCALE2).
        self.scale2 = scale2
        # Whether the header allows frames with a loop filter (CODING_FLAG_LOOPFILTER).
        self.loopfilter = loopfilter

    def geometry(self, scale: int) -> _Geometry:
        return _Geometry(self.height * scale, self.width * scale, scale)

    def output(self, coded: Frame, scale: int) -> Frame:
        """The displayed frame of a reconstruction at coding scale `scale`."""
        return _output_at(coded, scale, self.width, self.height)

    def decode(self, unit: bs.FrameUnit) -> Frame:
        """Reconstruct `unit`, make it the reference for the next frame, return the output frame."""
        import torch

        if not 0 <= unit.quality < self.nets.levels:
            raise BitstreamError(f"frame {unit.index}: quality {unit.quality} outside "
                                 f"0..{self.nets.levels - 1} of this model")
        if unit.flags & ~bs.KNOWN_FRAME_FLAGS:
            raise BitstreamError(f"frame {unit.index}: unknown frame flags 0x{unit.flags:02x}")
        filtered = bool(unit.flags & bs.FRAME_FLAG_FILTER)
        expected = {bs.FRAME_KEY: self.nets.intra.num_strings,
                    bs.FRAME_INTER: 2 + self.nets.inter.num_strings,
                    bs.FRAME_REBUILT: 1}[unit.frame_type] + filtered
        if len(unit.segments) != expected:
            raise BitstreamError(f"frame {unit.index}: {len(unit.segments)} segments, "
                                 f"expected {expected} for its frame type"
                                 + (" and its loop filter" if filtered else ""))
        scale = 2 if unit.flags & bs.FRAME_FLAG_SCALE2 else 1
        if scale == 2 and not self.scale2:
            raise BitstreamError(f"frame {unit.index}: coded at 2x in a stream whose header "
                                 "does not allow it")
        if filtered and not self.loopfilter:
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
                segments = unit.segments[:-1] if filtered else unit.segments
                coded = self._decode(unit.frame_type, unit.quality, segments, self.geometry(scale))
            if filtered:
                coded = Frame(*loopfilter.apply(coded.planes(), loopfilter.decode(unit.segments[-1])))
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

    def _decode(self, frame_type: int, quality: int, segments: tuple[bytes, ...],
                geo: _Geometry) -> Frame:
        """The reconstruction of a frame's coding segments (before any loop filter)."""
        hy, wy = geo.latent_shape
        if frame_type == bs.FRAME_KEY:
            x_hat = self.nets.intra.decompress(segments, (hy, wy), quality)
            return Frame(*_to_planes(x_hat, _tensor_geometry(geo)))
        assert self.reference is not None
        field = motion.decode_motion(segments[0], geo.motion_shape, geo.motion_block)
        pred = self.compensate(*self.reference.planes(), field)
        if frame_type == bs.FRAME_REBUILT:
            return Frame(*pred)
        mask = masking.decode_mask(segments[1], (hy, wy))
        import torch

        r_hat = self.nets.inter.decompress(segments[2:], (hy, wy), quality,
                                           mask=torch.from_numpy(mask))
        return _add_residual(pred, _to_planes(r_hat, _tensor_geometry(geo)))


def _source_at(frame: Frame, scale: int) -> Frame:
    """The frame as coded at `scale`: itself at 1, its `resample.upsample_frame` at 2."""
    return frame if scale == 1 else resample.upsample_frame(frame)


def _output_at(coded: Frame, scale: int, width: int, height: int) -> Frame:
    """The displayed width x height frame of a reconstruction coded at `scale`."""
    return coded if scale == 1 else resample.downsample_frame(coded, width, height)


def _tensor_geometry(g: _Geometry):
    from mcodec.codec import model as mdl

    hp, wp = -(-g.height // PATCH) * PATCH, -(-g.width // PATCH) * PATCH
    return mdl.FrameGeometry(g.height, g.width, hp, wp)


class FrameEncoder:
    """Chooses and produces the syntax of each frame; closed loop via FrameDecoder.

    One encoder codes frames at one coding scale (1 or 2; see `quality_ladder`):
    at 2 every frame is upsampled (`resample.upsample_frame`) and coded at twice
    the width and height, and the reconstruction is downsampled for output.
    """

    def __init__(self, nets: CodecNetworks, width: int, height: int, mask: str | float,
                 device: str = "cpu", scale: int = 1) -> None:
        if scale not in (1, 2):
            raise ValueError(f"coding scale must be 1 or 2, got {scale}")
        self.nets, self.mask, self.device, self.scale = nets, mask, device, scale
        self.recon = FrameDecoder(nets, width, height, device, obmc=USE_OBMC, scale2=scale == 2,
                                  loopfilter=USE_LOOP_FILTER)
        self.patches_total = 0
        self.patches_masked = 0
        self.scene_cuts = 0      # predicted frames coded as key frames instead

    def encode(self, frame: Frame, index: int, key: bool, quality: int) -> tuple[bs.FrameUnit, Frame]:
        """Code one frame at model level `quality` (key frames: + KEY_QUALITY_OFFSET, clamped);
        return its unit (which records the level used) and the decoder's output frame.

        A non-key frame is coded as a key frame too when the encoder finds it a
        scene cut (see SCENE_CUT_PSNR)."""
        import torch

        src = _source_at(frame, self.scale)
        with torch.no_grad():
            coded = None
            if not key and self.recon.reference is not None:
                coded = self._encode_inter(src, quality)
                self.scene_cuts += coded is None
            if coded is None:
                quality = min(quality + KEY_QUALITY_OFFSET, self.nets.levels - 1)
                coded = self._encode_key(src, quality)
            ftype, segments, recon = coded
        flags = bs.FRAME_FLAG_SCALE2 if self.scale == 2 else 0
        if USE_LOOP_FILTER:
            chroma = _LUMA_SHARE * _CHROMA_WEIGHT     # the weighted SSE's per-plane weights
            filt, filtered = loopfilter.fit(
                recon.planes(), frame.planes(), (_LUMA_SHARE, chroma, chroma),
                1.0 / self.nets.lambdas[quality],
                lambda planes: self.recon.output(Frame(*planes), self.scale).planes(), self.scale)
            if filt.active:
                segments = (*segments, loopfilter.encode(filt))
                recon = Frame(*filtered)
                flags |= bs.FRAME_FLAG_FILTER
        out = self.recon.output(recon, self.scale)
        unit = bs.FrameUnit(index=index, frame_type=ftype, quality=quality,
                            frame_hash=bs.frame_hash(*out.planes()), segments=segments, flags=flags)
        self.recon.reference, self.recon.reference_scale = recon, self.scale
        return unit, out

    def _encode_key(self, frame: Frame, q: int) -> tuple[int, tuple[bytes, ...], Frame]:
        x, geometry = _to_tensor(frame.planes(), self.device)
        comp = self.nets.intra.compress(x, q)
        return bs.FRAME_KEY, tuple(comp.strings), Frame(*_to_planes(comp.x_hat, geometry))

    def _encode_inter(self, frame: Frame, q: int) -> tuple[int, tuple[bytes, ...], Frame] | None:
        """Code `frame` as a predicted frame, or return None when it should be a key frame."""
        import torch

        ref = self.recon.reference
        assert ref is not None
        lam = 1.0 / self.nets.lambdas[q]            # weighted SSE per bit
        geo = self.recon.geometry(self.scale)
        field = motion.estimate_motion(frame.y, ref.y, block=geo.motion_block,
                                       search=SEARCH_RANGE * self.scale,
                                       lam=float(np.sqrt(lam)))  # SAD per bit, H.264's rule
        mv = motion.encode_motion(field)
        pred = self.recon.compensate(*ref.planes(), field)
        hy, wy = geo.latent_shape
        d_mask = _pad_to(_weighted_patch_sse(frame, pred), (hy, wy))
        if self.mask == 1.0 or (self.mask != "off" and not d_mask.any()):
            self.patches_total += hy * wy
            self.patches_masked += hy * wy
            return bs.FRAME_REBUILT, (mv,), Frame(*pred)
        x, geometry = _to_tensor(_residual_planes(frame, pred), self.device)
        net = self.nets.inter
        lam_mask = lam * MASK_LAMBDA_SCALE
        cut_suspect = frame_psnr_yuv(frame, Frame(*pred)) < SCENE_CUT_PSNR
        est = d_code = None
        if self.mask != "off":
            # Decisions on an estimate (float32 synthesis, no rANS): ~40 % faster
            # than a trial compress; the frame itself is then coded exactly.
            est = net.estimate(x, q)
            coded = _add_residual(pred, _to_planes(est.x_hat, geometry))
            d_code = _pad_to(_weighted_patch_sse(frame, coded), (hy, wy))
        if self.mask == "off":
            mask = np.zeros((hy, wy), dtype=bool)
        elif self.mask == "auto":
            r_code = est.position_bits.numpy()                       # (hy, wy) bits
            mask = masking.choose_mask(d_mask, d_code, r_code, lam_mask)
            # Whole-frame choice: motion only, when that is cheaper in J = D + lam*R.
            if d_mask.sum() <= d_code.sum() + lam_mask * est.total_bits:
                mask[:] = True
        else:
            mask = _mask_worst_kept(d_mask - d_code, float(self.mask))
        if cut_suspect and self._key_is_cheaper(frame, q, lam, x, geometry, pred, est, d_mask, d_code,
                                                mask, 8 * len(mv)):
            return None
        self.patches_total += hy * wy
        self.patches_masked += int(mask.sum())
        if mask.all():
            return bs.FRAME_REBUILT, (mv,), Frame(*pred)
        comp = net.compress(x, q, mask=torch.from_numpy(mask))
        recon = _add_residual(pred, _to_planes(comp.x_hat, geometry))
        return bs.FRAME_INTER, (mv, masking.encode_mask(mask), *comp.strings), recon

    def _key_is_cheaper(self, frame: Frame, q: int, lam: float, x, geometry, pred, est, d_mask, d_code,
                        mask: np.ndarray, side_bits: float) -> bool:
        """Scene-cut test: is coding `frame` as a key frame (at level q's lambda) cheaper
        in J = D + lam*R than the predicted-frame choice (`mask`) from the estimates?"""
        hy, wy = self.recon.geometry(self.scale).latent_shape
        if est is None:  # mask "off": the residual estimate was not needed until now
            est = self.nets.inter.estimate(x, q)
            coded = _add_residual(pred, _to_planes(est.x_hat, geometry))
            d_code = _pad_to(_weighted_patch_sse(frame, coded), (hy, wy))
        r_code = est.position_bits.numpy()
        z_bits = est.total_bits - float(r_code.sum())
        visible = ~mask
        j_inter = (float(np.where(mask, d_mask, d_code).sum())
                   + lam * (float(r_code[visible].sum()) + (z_bits if visible.any() else 0.0) + side_bits))
        xk, gk = _to_tensor(frame.planes(), self.device)
        key = self.nets.intra.estimate(xk, q)
        d_key = float(_weighted_patch_sse(frame, Frame(*_to_planes(key.x_hat, gk))).sum())
        return d_key + lam * key.total_bits < j_inter


def _pad_to(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-pad a per-patch map to the latent grid (padding patches have no distortion)."""
    out = np.zeros(shape, dtype=np.float64)
    out[:a.shape[0], :a.shape[1]] = a
    return out


def _mask_worst_kept(gain: np.ndarray, ratio: float) -> np.ndarray:
    """Mask round(ratio*N) patches, those whose coding gains least distortion."""
    n = gain.size
    k = int(round(ratio * n))
    order = np.argsort(gain, axis=None, kind="stable")[:k]
    mask = np.zeros(n, dtype=bool)
    mask[order] = True
    return mask.reshape(gain.shape)


# ----------------------------------------------------------------------------- sequences


def _gops(frames: Iterator[Frame], gop: int) -> Iterator[list[Frame]]:
    """Group a frame stream into lists of at most `gop` frames (bounded memory)."""
    chunk: list[Frame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == gop:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class _GopResult:
    units: list[bs.FrameUnit]
    psnr: list[float]
    nbytes: int
    masked: int
    total: int
    scene_cuts: int


def _scale_crossover(nets: CodecNetworks, frame: Frame, device: str) -> int:
    """The smallest --quality value from which a GOP starting with `frame` is coded at 2x.

    For each value q offering both scales, in increasing order, the key frame's
    J = D + lambda_q * R is estimated at both (D on the output frame in the
    training loss's weighted SSE, lambda_q = 1/lambda of model level q, R the
    estimated bits); the first q where 2x costs less is the crossover. One
    threshold per GOP makes the choice monotonic in q (a per-q comparison was
    not: on training clips it flipped back to 1x at q7). Returns len(ladder)
    when 1x always wins.
    """
    import torch

    ladder = quality_ladder(nets.levels)
    top = nets.levels - 1
    cost: dict[tuple[int, int], tuple[float, float]] = {}   # (scale, key level) -> (D, bits)

    def key_cost(scale: int, level: int) -> tuple[float, float]:
        k = (scale, min(level + KEY_QUALITY_OFFSET, top))
        if k not in cost:
            x, geometry = _to_tensor(_source_at(frame, scale).planes(), device)
            with torch.no_grad():
                est = nets.intra.estimate(x, k[1])
            coded = _output_at(Frame(*_to_planes(est.x_hat, geometry)), scale, frame.width,
                               frame.height)
            cost[k] = float(_weighted_patch_sse(frame, coded).sum()), est.total_bits
        return cost[k]

    for q, cands in enumerate(ladder):
        if len(cands) < 2:
            continue
        lam = 1.0 / nets.lambdas[min(q, top)]                 # weighted SSE per bit
        (d1, r1), (d2, r2) = (key_cost(*c) for c in cands)
        if d2 + lam * r2 < SCALE_J_BIAS * (d1 + lam * r1):
            return q
    return len(ladder)


def _gop_crossover(nets: CodecNetworks, frames: list[Frame], device: str) -> Callable[[], int]:
    """The GOP's `_scale_crossover`, computed on first use and only once (rate control
    tries several qualities of one GOP; values offering one scale never need it)."""
    return functools.cache(lambda: _scale_crossover(nets, frames[0], device))


def _choose_scale(nets: CodecNetworks, quality: int, crossover: Callable[[], int]) -> tuple[int, int]:
    """(scale, model level) of a GOP at --quality `quality`: the only candidate the
    ladder offers, or, when it offers both, 2x from the GOP's crossover up
    (`crossover()`, see `_gop_crossover`: the content decides)."""
    cands = [c for c in quality_ladder(nets.levels)[quality] if c[0] in CODING_SCALES]
    if not cands:
        raise McodecError(f"--quality {quality}: no coding scale of {CODING_SCALES} offers it")
    if len(cands) == 1:
        return cands[0]
    return cands[1] if quality >= crossover() else cands[0]


def _encode_gop(nets: CodecNetworks, frames: list[Frame], first_index: int, quality: int,
                mask: str | float, device: str,
                crossover: Callable[[], int] | None = None) -> _GopResult:
    """Code one GOP at --quality `quality` (see `quality_ladder` and `_choose_scale`);
    `crossover` is the GOP's `_gop_crossover` when the caller already has one."""
    scale, level = _choose_scale(nets, quality, crossover or _gop_crossover(nets, frames, device))
    enc = FrameEncoder(nets, frames[0].width, frames[0].height, mask, device, scale=scale)
    units, psnr = [], []
    for i, frame in enumerate(frames):
        unit, recon = enc.encode(frame, first_index + i, key=(i == 0), quality=level)
        units.append(unit)
        psnr.append(frame_psnr_yuv(frame, recon))
    nbytes = sum(sum(len(s) for s in u.segments) + 24 + 4 * len(u.segments) + 9 for u in units)
    return _GopResult(units, psnr, nbytes, enc.patches_masked, enc.patches_total, enc.scene_cuts)


def _choose_gop(nets: CodecNetworks, frames: list[Frame], first_index: int, opts: EncodeOptions,
                budget_bytes: float, start_q: int, device: str) -> tuple[int, _GopResult]:
    """Rate control: the quality whose GOP size best meets `budget_bytes`.

    GOPs start with a key frame, so each trial is an exact, independent encode.
    Walks from `start_q` (the previous GOP's level) up or down until the size
    crosses the budget, then keeps the closer of the two bracketing levels.
    """
    tried: dict[int, _GopResult] = {}
    crossover = _gop_crossover(nets, frames, device)

    def trial(q: int) -> _GopResult:
        if q not in tried:
            tried[q] = _encode_gop(nets, frames, first_index, q, opts.mask, device, crossover)
        return tried[q]

    q = start_q
    step = 1 if trial(q).nbytes < budget_bytes else -1
    while 0 <= q + step < len(quality_ladder(nets.levels)):
        nxt = q + step
        if (trial(nxt).nbytes < budget_bytes) != (step == 1):
            break  # crossed the budget between q and nxt
        q = nxt
    best = min(tried, key=lambda k: abs(tried[k].nbytes - budget_bytes))
    return best, tried[best]


def _coding_flags(options: EncodeOptions, levels: int) -> int:
    """The header's CODING_FLAG_* bits: OBMC when the encoder uses it, SCALE2 when a GOP
    may be coded at 2x (any quality under --bitrate, else the --quality value's ladder)."""
    may_2x = 2 in CODING_SCALES and (
        bool(options.bitrate)
        or any(scale == 2 for scale, _ in quality_ladder(levels)[options.quality]))
    return ((bs.CODING_FLAG_OBMC if USE_OBMC else 0)
            | (bs.CODING_FLAG_SCALE2 if may_2x else 0)
            | (bs.CODING_FLAG_LOOPFILTER if USE_LOOP_FILTER else 0))


def _open_output(dst: str, overwrite: bool) -> tuple[BinaryIO, str | None]:
    """The binary output and its temporary path (None for stdout)."""
    if dst == "-":
        return sys.stdout.buffer, None
    parent = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(parent):
        raise McodecError(f"output folder does not exist: {parent}")
    if os.path.lexists(dst) and not overwrite:
        raise McodecError(f"output exists: {dst} (use -y to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dst)}.", suffix=".partial", dir=parent)
    return os.fdopen(fd, "w+b"), tmp


def encode(src: str, dst: str, *, options: EncodeOptions = EncodeOptions(),
           model_id: str | None = None, device: str = "cpu", overwrite: bool = False,
           size: str | None = None, fps: str | None = None, pix_fmt: str | None = None,
           progress: bool = False, warn: Callable[[str], None] | None = None,
           networks: CodecNetworks | None = None) -> EncodeSummary:
    """Encode video `src` (path or ``-``) into the mcodec bitstream `dst` (path or ``-``).

    The output appears atomically when encoding succeeds. Memory is bounded by
    one GOP of frames (the rate control re-encodes a GOP at trial qualities).

    Raises:
        McodecError: unreadable input, existing output without `overwrite`, bad options.
    """
    levels = len(quality_ladder(networks.levels if networks is not None
                                else zoo.get_model(model_id).quality_levels))
    if not 0 <= options.quality < levels:
        raise McodecError(f"--quality must be in 0..{levels - 1}, got {options.quality}")
    start = time.perf_counter()
    # The input is opened (and its errors reported) before torch and the weights load.
    with open_video(src, size=size, fps=fps, pix_fmt=pix_fmt, max_frames=options.frames,
                    warn=warn) as reader:
        nets = networks or load_networks(model_id, device)
        info = reader.info
        mask_mode = (bs.MASK_AUTO if options.mask == "auto" else bs.MASK_OFF if options.mask == "off"
                     else bs.MASK_FIXED)
        header = bs.SequenceHeader(
            width=info.width, height=info.height, fps_num=info.fps.numerator,
            fps_den=info.fps.denominator, frame_count=0,
            coding=bs.CodingParams(
                gop=options.gop,
                quality=bs.QUALITY_PER_FRAME if options.bitrate else options.quality,
                patch_size=PATCH, search_range=SEARCH_RANGE, mask_mode=mask_mode,
                mask_ratio_permille=int(round(1000 * options.mask)) if mask_mode == bs.MASK_FIXED else 0,
                flags=_coding_flags(options, nets.levels)),
            model_sha256=nets.digest, model_name=nets.model_id,
            color_range=bs.COLOR_RANGE_LIMITED, color_matrix=bs.COLOR_MATRIX_BT601)
        out, tmp = _open_output(dst, overwrite)
        try:
            frames = psnr_sum = masked = total = spent = cuts = 0
            qualities: list[int] = []
            q = options.quality
            from tqdm import tqdm

            bar = tqdm(desc="encode", unit="frame", disable=not progress, file=sys.stderr)
            with bs.BitstreamWriter(out, header) as writer:
                for gop in _gops(iter(reader), options.gop):
                    if options.bitrate:
                        seconds = (frames + len(gop)) / float(info.fps)
                        budget = options.bitrate * 1000 / 8 * seconds - spent
                        q, result = _choose_gop(nets, gop, frames, options, budget, q, device)
                    else:
                        result = _encode_gop(nets, gop, frames, q, options.mask, device)
                    for unit in result.units:
                        writer.write_frame(unit)
                    qualities.append(q)
                    spent += result.nbytes
                    frames += len(gop)
                    psnr_sum += sum(result.psnr)
                    masked += result.masked
                    total += result.total
                    cuts += result.scene_cuts
                    bar.update(len(gop))
            bar.close()
            if frames == 0:
                raise McodecError(f"{src}: no frames to encode")
            nbytes = spent
            if tmp is not None:
                out.flush()
                os.fsync(out.fileno())
                out.close()
                publish(tmp, dst)
                nbytes = os.path.getsize(dst)
                tmp = None
        finally:
            if tmp is not None:
                out.close()
                os.unlink(tmp)
    return EncodeSummary(frames=frames, width=info.width, height=info.height, fps=info.fps,
                         bytes=nbytes, seconds=time.perf_counter() - start,
                         psnr_yuv=psnr_sum / frames, qualities=tuple(qualities),
                         masked_fraction=masked / total if total else 0.0, scene_cuts=cuts)


@dataclass(frozen=True)
class StreamInfo:
    """What a decoder knows once the sequence header is read."""

    width: int
    height: int
    fps: Fraction
    model_id: str


# Largest frame this decoder accepts by default, luma pixels (4096x2304). The
# float64 synthesis holds ~400 bytes per pixel at its peak, so this caps a
# decode at ~4 GB; the container itself allows up to bitstream.MAX_PIXELS.
DEFAULT_MAX_DECODE_PIXELS = 4096 * 2304


def _check_decode_size(h: bs.SequenceHeader, max_pixels: int | None) -> None:
    """Refuse frames whose *coded* size (2x when the header allows it) exceeds the limit."""
    limit = DEFAULT_MAX_DECODE_PIXELS if max_pixels is None else max_pixels
    s = 2 if h.coding.flags & bs.CODING_FLAG_SCALE2 else 1
    if h.width * h.height * s * s > limit:
        coded = f" (coded at 2x: {2 * h.width}x{2 * h.height})" if s == 2 else ""
        raise BitstreamError(f"frame size {h.width}x{h.height}{coded} exceeds this decoder's limit "
                             f"of {limit} pixels (raise it with --max-pixels if you have the memory)")


def _networks_for(h: bs.SequenceHeader, device: str, networks: CodecNetworks | None) -> CodecNetworks:
    """The networks a stream's header names: `networks` if given (digest checked), else from the zoo."""
    if networks is None:
        return load_networks(h.model_name, device, digest=h.model_sha256)
    if networks.digest != h.model_sha256:
        raise ModelError(f"stream needs model {h.model_name!r} "
                         f"(sha256 {h.model_sha256.hex()[:16]}...), given {networks.model_id!r} "
                         f"(sha256 {networks.digest.hex()[:16]}...)")
    return networks


def _frame_decoder(nets: CodecNetworks, h: bs.SequenceHeader, device: str) -> FrameDecoder:
    """The frame decoder of a stream: its coding tools come from the header's flags."""
    return FrameDecoder(nets, h.width, h.height, device,
                        obmc=bool(h.coding.flags & bs.CODING_FLAG_OBMC),
                        scale2=bool(h.coding.flags & bs.CODING_FLAG_SCALE2),
                        loopfilter=bool(h.coding.flags & bs.CODING_FLAG_LOOPFILTER))


def iter_decode(source: BinaryIO, *, device: str = "cpu", networks: CodecNetworks | None = None,
                max_pixels: int | None = None) -> tuple[StreamInfo, Iterator[Frame]]:
    """Parse the header of `source` and return (info, a lazy iterator of decoded frames).

    Frames come one at a time (memory bounded by one frame and its reference);
    every frame's hash is checked against the encoder's reconstruction.
    `max_pixels` caps the frame size (default DEFAULT_MAX_DECODE_PIXELS).

    Raises:
        BitstreamError: damaged stream (names the unit and offset), also while iterating.
        ModelError: the stream needs a model this installation does not have.
    """
    reader = bs.BitstreamReader(source)
    h = reader.header
    _check_decode_size(h, max_pixels)  # before torch and the weights load
    nets = _networks_for(h, device, networks)
    dec = _frame_decoder(nets, h, device)

    def frames() -> Iterator[Frame]:
        for _, unit in reader.units():
            if isinstance(unit, bs.FrameUnit):
                yield dec.decode(unit)

    return StreamInfo(h.width, h.height, h.fps, h.model_name), frames()


@dataclass
class LossReport:
    """Filled in by `salvage_decode` while it runs (complete once its iterator is exhausted).

    Attributes:
        lost: indexes of frames that could not be decoded (damaged, missing, or
            predicted from a lost frame); each was replaced by a copy of the
            previous output frame (mid-grey before the first decoded frame).
        damage: one message per damaged region of the stream ("... at byte N").
    """

    lost: list[int]
    damage: list[str]


def _grey_frame(width: int, height: int) -> Frame:
    ch, cw = (height + 1) // 2, (width + 1) // 2
    return Frame(np.full((height, width), 128, np.uint8), np.full((ch, cw), 128, np.uint8),
                 np.full((ch, cw), 128, np.uint8))


def salvage_decode(data: bytes, *, device: str = "cpu", networks: CodecNetworks | None = None,
                   max_pixels: int | None = None) -> tuple[StreamInfo, Iterator[Frame], LossReport]:
    """Decode every intact GOP of a damaged stream (the CLI's ``--keep-going``).

    Frames come out in order, one per frame the stream should hold: decoded
    frames are hash-verified as always; a frame that is damaged, missing, or
    predicted from a lost frame is concealed by repeating the previous output
    frame, and listed in the report. Decoding resumes at the next intact key
    frame.

    Raises:
        BitstreamError: the file or sequence header is damaged.
        ModelError: the stream needs a model this installation does not have.
    """
    found = bs.salvage(data)
    h = found.header
    _check_decode_size(h, max_pixels)  # before torch and the weights load
    nets = _networks_for(h, device, networks)
    report = LossReport(lost=[], damage=[str(e) for e in found.damage])
    total = found.frame_count
    if total is None:
        total = found.frames[-1][1].index + 1 if found.frames else 0
    units = {u.index: u for _, u in found.frames if u.index < total}

    def frames() -> Iterator[Frame]:
        dec = _frame_decoder(nets, h, device)
        last = _grey_frame(h.width, h.height)
        for i in range(total):
            unit = units.get(i)
            frame = None
            # A predicted frame whose reference is lost is lost too (not itself damage).
            if unit is not None and (unit.frame_type == bs.FRAME_KEY or dec.reference is not None):
                try:
                    frame = dec.decode(unit)
                except BitstreamError as err:
                    report.damage.append(str(err))
            if frame is None:
                dec.reference = None  # later predicted frames have no valid reference
                report.lost.append(i)
                frame = last
            last = frame
            yield frame

    return StreamInfo(h.width, h.height, h.fps, h.model_name), frames(), report


def decode(src: str, dst: str, *, device: str = "cpu", overwrite: bool = False,
           progress: bool = False, networks: CodecNetworks | None = None,
           keep_going: bool = False, max_pixels: int | None = None) -> DecodeSummary:
    """Decode the mcodec bitstream `src` (path or ``-``) into video `dst` (see video_io).

    The output appears atomically, and only when the whole stream decoded with
    every frame hash verified. With `keep_going`, a damaged stream is decoded
    as far as possible instead (`salvage_decode`: lost frames are concealed and
    listed in the summary; the whole stream is read into memory first).

    Raises:
        BitstreamError: damaged stream (names the unit and offset).
        ModelError: the stream needs a model this installation does not have.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    source: BinaryIO
    if src == "-":
        source = sys.stdin.buffer
    else:
        try:
            source = open(src, "rb")
        except OSError as exc:
            raise BitstreamError(f"cannot open {src}: {exc.strerror}") from None
    try:
        report = None
        if keep_going:
            info, frames, report = salvage_decode(source.read(), device=device, networks=networks,
                                                  max_pixels=max_pixels)
        else:
            info, frames = iter_decode(source, device=device, networks=networks, max_pixels=max_pixels)
        count = 0
        with open_writer(dst, info.width, info.height, info.fps, overwrite=overwrite) as writer, \
                tqdm(desc="decode", unit="frame", disable=not progress, file=sys.stderr) as bar:
            for frame in frames:
                writer.write(frame)
                count += 1
                bar.update(1)
    finally:
        if src != "-":
            source.close()
    return DecodeSummary(frames=count, width=info.width, height=info.height,
                         seconds=time.perf_counter() - start,
                         lost_frames=tuple(report.lost) if report else (),
                         damage=tuple(report.damage) if report else ())
