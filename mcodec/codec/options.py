"""What the user and the tuner set, and what encode/decode report: options, tuning, summaries.

Light on purpose (no numpy, no torch): the CLI, the bench and the tuning
scripts read these without loading the codec.

`EncoderTuning` holds every tuned constant of the encoder, each with the
measurement that chose it; `EncodeOptions` carries one. Tests and tuning
scripts vary a knob with `dataclasses.replace(EncoderTuning(), ...)`, and the
bench derives its result-cache key from all fields (`EncoderTuning.key()`), so
a new knob can never serve stale cached results. None of these is in the
bitstream as such: the decoder reads what it needs (OBMC, loop filter, 2x)
from the stream's header flags, never from the encoder's settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction

from mcodec.codec import ladder
from mcodec.codec.bitstream import format_ranges
from mcodec.errors import McodecError


@dataclass(frozen=True)
class EncoderTuning:
    """The encoder's tuned constants (all chosen on training clips only).

    Attributes:
        key_quality_offset: key frames are coded this many model levels above the
            GOP's level (clamped), as in x264's I-frame QP offset; every predicted
            frame inherits the key frame's quality. benchmarks/tune_encoder.py key
            0,2: +2 gave +0.1..1.2 dB at equal rate over +0.
        motion_lambda_scale: multiplier on the motion search's lambda (sqrt of the
            SSE lambda, H.264's rule: SAD per bit). mcodec-s1, 12 frames, q 0/2/4
            (tune_encoder.py motion 1,4,16): x1 beat x4 and x16 at every point.
        mask_lambda_scale: multiplier on the training lambda's rate weight (1/lambda,
            SSE per bit) in the masking decisions; > 1 favours masking. masklam
            (mcodec-s2, 32 frames, q0..7): x2 gave -3.5 / -0.7 / -3.3 % BD-rate on
            carphone, bikes, bigbuckbunny but made rate non-monotonic in the quality
            level on the bench's synthetic clip, which the levels must never be: 1.
        mask_check: how far the masking decision looks at what the decoder will
            output. 0: per patch, a masked patch's distortion is the prediction's,
            a coded one's the unmasked estimate's (with masking, the synthesis
            fills a masked patch from its coded neighbours and the context
            changes, so neither is what the decoder outputs). 1: the mask is then
            estimated as coded, and the frame takes whichever of that mask, no
            mask and motion only is cheapest in J = D + lambda R on those
            outputs. 2: before that, one refinement: patches whose masked output
            turned out worse than coding them are unmasked and re-estimated.
            maskcheck 0,1,2 (mcodec-s3f, random access, 16 frames, q 0,2,4,6,8):
            1 gave -1.5 / -7.4 / -1.5 % BD-rate on carphone, bikes, bigbuckbunny,
            2 gave -2.4 / -4.2 / -1.8 %: 1. With it, `--mask auto` against `off`
            (mask 0,1): -2.5 / +0.2 / -3.9 % (before: masking cost rate). masklam
            1,1.5 on top of it: -1.0 / +1.2 / -0.2 %, so mask_lambda_scale stays 1.
        search_range: integer motion search range, luma pixels at coding scale 1
            (recorded in the header; the decoder does not need it). The motion
            block size is not a knob: it is part of the frame syntax.
        obmc: overlapped block motion compensation for predicted frames (header
            flag CODING_FLAG_OBMC). obmc 0,1 (mcodec-s2, 32 frames, q0..7): -7.5 %
            BD-rate on bigbuckbunny, -6.3 % bikes, +1.2 % carphone.
        scene_cut_psnr: a predicted frame whose motion-compensated prediction is
            below this PSNR-YUV (dB) may be a scene cut: the encoder then also
            estimates it as a key frame and codes it so when cheaper in J = D +
            lambda R. Only bounds the work (the choice is the J comparison); on
            training clips ordinary frames predicted at >= 31.8 dB, bikes' cut 16.7.
        coding_scales: the coding scales the encoder may choose from (1 and 2).
        level_shift_2x: --quality q offers 2x at model level q - shift (see
            `mcodec.codec.ladder`, which documents why 2).
        scale_j_bias: the GOP goes to 2x when the key frame's J at 2x is below this
            times its J at 1x (> 1 leans to 2x, whose predicted frames the test
            does not see). scalebias 1,1.15,1.3 (16 frames, q0..9): 1.15 gave
            -8.1 % bigbuckbunny, -5.0 % carphone, 0.0 % bikes; 1.3 cost bikes +10 %.
        decision_chroma_weight: w in the decisions' distortion LUMA_SHARE * (SSE_y +
            w (SSE_u + SSE_v)); 2/3 is the training loss's own weighting.
        loop_filter: frames may carry a Wiener loop filter (header flag
            CODING_FLAG_LOOPFILTER), sent when it pays in J. loopfilter 1 vs 0
            (16 frames, q0,2,4,5,7,9): -5.6 / -0.7 / -4.1 % BD-rate.
        bi_group: random access: frames from one anchor (key or predicted frame)
            to the next; the frames between are bi frames in a dyadic hierarchy
            (the middle one first, predicted from both anchors, then the middles
            of each half, ...), temporal level 1, 2, ... by depth. benchmarks/one_encode.py,
            training clips, 17 frames, q4, bytes / PSNR-YUV dB, groups 2 / 4 / 8:
            bigbuckbunny 18059 / 37.93, 17806 / 37.51, 17869 / 37.36; bikes 11162 / 44.19,
            10992 / 44.19, 11705 / 43.94 (low delay: 17461 / 38.19 and 11707 / 43.74).
            4 (x264's default of 3 B-frames) beats 8 on both.
        level_offsets: model-level offset of the frames of temporal level k
            (index k; anchors are level 0, deeper levels reuse the last entry),
            added to the GOP's level and clamped: the quality cascade of
            x264's mb-tree and DCVC-DC. tune_encoder.py cascade 0,11 (17 frames,
            q 0,2,4): (0, 0, -1) at the same RD curve's slope gave +0.16 dB on
            bigbuckbunny and +0.12 dB carphone at q4, -0.06 dB bikes; q0 is unchanged
            (level 0 cannot go lower).
        level_mask_lambda: multiplier on the masking decisions' lambda per temporal
            level (deeper = more masking: those frames are referenced less).
        bi_motion_lambda_scale: extra multiplier on the motion lambda of bi frames
            (their vectors and modes fragment easily; a smoother field costs less).
        bi_exact_modes: a bi frame's blocks take their mode and vectors in coding
            order at the least SAD + lambda * the bits the block really costs given
            the blocks before it, a single-reference block also its predictor
            (`motion_search.estimate_bi_motion`, `exact`), instead of bits
            estimated against each searched field's own predictor (which missed
            that in a mixed field a single-reference block is predicted from
            neighbours on direct vectors: such blocks cost ~12 bits each).
        motion_exact: a predicted frame's vectors get a last pass in coding order:
            each block takes the least SAD + lambda * exact bits of its searched
            vector, its predictor, its left and top neighbours' vectors and zero
            (`motion_search.estimate_motion`, `exact`). With bi_exact_modes
            (tune_encoder.py search 0,1 --clips all, random access, 16 frames,
            q 0,2,4,6,8, measured with a predictive second coarse-search pass on in
            both, since removed: it added +0.2 % on top, docs/model.md): -7.9 / -29.9 / -8.9 /
            -24.7 / -12.8 / -16.0 % BD-rate on bigbuckbunny, bikes, carphone,
            flower, office, street (mean -16.7 %); at q0 the streams are 24-55 %
            smaller at -0.27..+0.37 dB.
        mask_map_bits: the masking decisions count the mask map's own bits: per
            patch its flag in its real context (`mask_decision.choose_mask_coded`),
            and the whole-mask check (mask_check) adds the coded map to the masked
            candidate's J. maskbits 0,1 (--clips all, random access, 16 frames,
            q 0,2,4,6,8, with the exact motion passes): -3.1 / -4.9 / -2.2 / -3.9 /
            -3.6 / -6.8 % BD-rate on bigbuckbunny, bikes, carphone, flower, office,
            street (mean -4.1 %).
        motion_range_growth: the motion search range grows with the distance to
            the reference, up to this factor (an anchor 8 frames away moves 8x).
    """

    key_quality_offset: int = 2
    motion_lambda_scale: float = 1.0
    mask_lambda_scale: float = 1.0
    mask_check: int = 1
    search_range: int = 16
    obmc: bool = True
    scene_cut_psnr: float = 25.0
    coding_scales: tuple[int, ...] = (1, 2)
    level_shift_2x: int = ladder.LEVEL_SHIFT_2X
    scale_j_bias: float = 1.15
    decision_chroma_weight: float = 2.0 / 3.0
    loop_filter: bool = True
    bi_group: int = 4
    level_offsets: tuple[int, ...] = (0, 0, -1)
    level_mask_lambda: tuple[float, ...] = (1.0,)
    motion_range_growth: int = 4
    bi_motion_lambda_scale: float = 1.0
    bi_exact_modes: bool = True
    motion_exact: bool = True
    mask_map_bits: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.bi_group <= 64:
            raise ValueError(f"bi_group must be in 1..64, got {self.bi_group}")
        if not self.level_offsets or not self.level_mask_lambda:
            raise ValueError("level_offsets and level_mask_lambda need at least one entry")
        if self.motion_range_growth < 1:
            raise ValueError(f"motion_range_growth must be >= 1, got {self.motion_range_growth}")
        if not self.coding_scales or not set(self.coding_scales) <= {1, 2}:
            raise ValueError(f"coding_scales must be a non-empty subset of (1, 2), got {self.coding_scales}")
        if not 1 <= self.search_range <= 255:
            raise ValueError(f"search_range must be in 1..255, got {self.search_range}")
        if self.mask_check not in (0, 1, 2):
            raise ValueError(f"mask_check must be 0, 1 or 2, got {self.mask_check}")
        if self.level_shift_2x < 0:
            raise ValueError(f"level_shift_2x must be >= 0, got {self.level_shift_2x}")

    def key(self) -> str:
        """Every field, by name (a result cache keyed on it re-codes when any knob changes)."""
        return repr(sorted(dataclasses.asdict(self).items()))

    def level_offset(self, level: int) -> int:
        return self.level_offsets[min(level, len(self.level_offsets) - 1)]

    def level_lambda(self, level: int) -> float:
        return self.level_mask_lambda[min(level, len(self.level_mask_lambda) - 1)]

    def quality_ladder(self, levels: int) -> tuple[tuple[tuple[int, int], ...], ...]:
        """(coding scale, model level) candidates of each --quality value (`mcodec.codec.ladder`)."""
        return ladder.quality_ladder(levels, self.level_shift_2x)


MASK_MODES = ("auto", "off")
STRUCTURES = ("randomaccess", "lowdelay")
PRESETS = ("fast", "medium", "slow")


def preset_tuning(preset: str) -> EncoderTuning:
    """The encoder tuning of `--preset` (medium: the shipped `EncoderTuning`).

    fast: one coding scale (no 2x candidate: the encoder skips the 2x test and
    the decoder never synthesizes 4x the pixels; the --quality values that only
    2x offers code at the top 1x level) and a motion search range of 8; slow: a
    search range of 32. Their RD and speed against medium
    are measured by ``benchmarks/presets.py`` (figures in docs/performance.md).
    """
    if preset not in PRESETS:
        raise McodecError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    base = EncoderTuning()
    if preset == "fast":
        return dataclasses.replace(base, coding_scales=(1,), search_range=8)
    if preset == "slow":
        return dataclasses.replace(base, search_range=32)
    return base


def parse_mask(text: str) -> str | float:
    """CLI value of --mask: 'auto', 'off' or a ratio."""
    if text in MASK_MODES:
        return text
    try:
        return float(text)
    except ValueError:
        raise McodecError(f"--mask must be auto, off or a ratio in [0, 1], got {text!r}") from None


@dataclass(frozen=True)
class EncodeOptions:
    """How to encode.

    Attributes:
        quality: index into the quality ladder (0 = smallest file); ignored when `bitrate` is set.
        bitrate: target in kbit/s for the whole clip (quality chosen per GOP), or None.
        gop: key-frame interval in frames (>= 1).
        mask: "auto" (rate-distortion decision per patch), "off" (code every
            patch), or a ratio in [0, 1] (that fraction of patches of each
            predicted frame masked, the worst-predicted ones kept).
        frames: encode at most this many frames (None = all).
        structure: "randomaccess" (hierarchical bi frames between anchors, frames
            coded out of display order, as x264/x265 by default) or "lowdelay"
            (every frame predicted from the previous one, coded in display order).
        tuning: the encoder's tuned constants (defaults: the shipped tuning).
    """

    quality: int = 4
    bitrate: float | None = None
    gop: int = 32
    mask: str | float = "auto"
    frames: int | None = None
    structure: str = "randomaccess"
    tuning: EncoderTuning = field(default_factory=EncoderTuning)

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise McodecError(f"--structure must be one of {', '.join(STRUCTURES)}, got {self.structure!r}")
        if self.gop < 1:
            raise McodecError(f"--gop must be >= 1, got {self.gop}")
        if self.bitrate is not None and not self.bitrate > 0:
            raise McodecError(f"--bitrate must be > 0 kbit/s, got {self.bitrate}")
        if self.frames is not None and self.frames < 1:
            raise McodecError(f"--frames must be >= 1, got {self.frames}")
        if isinstance(self.mask, str):
            if self.mask not in MASK_MODES:
                raise McodecError(f"--mask must be auto, off or a ratio in [0, 1], got {self.mask!r}")
        elif not 0.0 <= float(self.mask) <= 1.0:
            raise McodecError(f"--mask ratio must be in [0, 1], got {self.mask}")


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
        lost = (f", {len(self.lost_frames)} lost frames concealed ({format_ranges(self.lost_frames, ',')})"
                if self.lost_frames else "")
        return (f"{self.frames} frames {self.width}x{self.height} decoded, hashes verified"
                f"{lost}, {self.frames / max(self.seconds, 1e-9):.2f} fps")
