"""Encode and decode dataflow, top-down.

    encode: frames --GOPs of --gop frames--> per GOP: coding layer (1x, or the upper
            layer: the fine networks, or 2x for a model without them; from the
            key frame's J in both) and model level (--quality, or rate control for
            --bitrate: trial encodes of the GOP) --coding order (`coding_order`:
            low delay = display order; random access = key frame, anchors every
            `EncoderTuning.bi_group` frames, hierarchical bi frames between them, a
            new closed GOP at each scene cut), level offset per temporal level
            --FrameEncoder (frame_encoder.py)--> container units in decode order,
            each with its display index and the hash of the decoder's reconstruction
    decode: container units --FrameDecoder (reconstruct.py)--> frames, hash verified,
            reordered to display order, the END digest checked;
            --keep-going: every intact GOP, lost frames concealed and listed

The encoder reconstructs every frame exactly as the decoder will (closed loop)
and predicts from those reconstructions: a predicted frame from the nearest
coded frame before it in display order, a bi frame also from the nearest after
it. Frame syntax (what each container segment means): syntax.py. Masked
patches: a patch is 16x16 luma pixels (8x8 of each chroma plane), one position
of the networks' latent grid; in a predicted or bi frame a *masked* patch sends
no latent symbols and the decoder rebuilds it from the motion-compensated
prediction and the visible latents around it; a frame with every patch masked
is sent as motion only (rebuilt / bi-rebuilt). The encoder's tuned constants
are `EncodeOptions.tuning` (options.py); what the decoder needs comes from the
stream's header only.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

from mcodec.atomic import publish, temporary_beside
from mcodec.codec import bitstream as bs
from mcodec.codec import zoo
from mcodec.codec.distortion import frame_psnr_yuv, loss_patch_sse
from mcodec.codec.frame import Frame
from mcodec.codec.frame_encoder import FrameEncoder
from mcodec.codec.options import DecodeSummary, EncodeOptions, EncodeSummary, EncoderTuning
from mcodec.codec.reconstruct import FrameDecoder, output_at, source_at, to_planes, to_tensor
from mcodec.codec.syntax import PATCH
from mcodec.codec.video_io import open_video, open_writer
from mcodec.codec.zoo import CodecNetworks, DecoderNetworks
from mcodec.errors import BitstreamError, McodecError, ModelError


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


@dataclass(frozen=True)
class CodedFrame:
    """A frame's place in a GOP's coding order: display offset in the GOP, temporal
    level (0: key and anchor frames), and whether it is a bi frame."""

    display: int
    level: int
    bi: bool


def coding_order(frames: int, structure: str, bi_group: int) -> list[CodedFrame]:
    """The decode order of a GOP of `frames` frames (the first is the key frame).

    lowdelay: display order, every frame predicted from the previous one.
    randomaccess: anchors every `bi_group` frames (and at the GOP's last frame),
    each predicted from the previous anchor; between two anchors, the middle
    frame as a bi frame of level 1, then recursively the middles of each half
    (levels 2, 3, ...), each bi frame from the nearest coded frames on both sides.
    """
    if structure == "lowdelay" or bi_group == 1:
        return [CodedFrame(i, 0, False) for i in range(frames)]
    order = [CodedFrame(0, 0, False)]

    def split(a: int, b: int, level: int) -> None:
        if b - a >= 2:
            m = (a + b) // 2
            order.append(CodedFrame(m, level, True))
            split(a, m, level + 1)
            split(m, b, level + 1)

    start = 0
    while start < frames - 1:
        end = min(start + bi_group, frames - 1)
        order.append(CodedFrame(end, 0, False))
        split(start, end, 1)
        start = end
    return order


@dataclass
class _GopResult:
    units: list[bs.FrameUnit]
    psnr: list[float]
    nbytes: int
    masked: int
    total: int
    scene_cuts: int


def _scale_crossover(nets: CodecNetworks, frame: Frame, tuning: EncoderTuning) -> int:
    """The smallest --quality value from which a GOP starting with `frame` is coded in the
    upper layer (2x, or the fine networks: `coding_layer`; "2x" below means either).

    For each value q offering both scales, in increasing order, the key frame's
    J = D + lambda_q * R is estimated at both (D on the output frame in the
    training loss's weighted SSE, lambda_q = 1/lambda of model level q, R the
    estimated bits); the first q where 2x costs less is the crossover. One
    threshold per GOP makes the choice monotonic in q (a per-q comparison was
    not: on training clips it flipped back to 1x at q7). Returns len(ladder)
    when 1x always wins.
    """
    import torch

    ladder = tuning.quality_ladder(nets.levels)
    top = nets.levels - 1
    cost: dict[tuple[int, int], tuple[float, float]] = {}   # (scale, key level) -> (D, bits)

    def key_cost(scale: int, level: int) -> tuple[float, float]:
        k = (scale, min(level + tuning.key_quality_offset, top))
        if k not in cost:
            scale, fine = coding_layer(nets, scale)
            layer = nets.fine if fine else nets
            x, geometry = to_tensor(source_at(frame, scale).planes(), layer)
            with torch.no_grad():
                est = layer.intra.estimate(x, k[1])
            coded = output_at(Frame(*to_planes(est.x_hat, geometry)), scale, frame.width,
                              frame.height)
            cost[k] = float(loss_patch_sse(frame, coded, PATCH, tuning.decision_chroma_weight).sum()), \
                est.total_bits
        return cost[k]

    for q, cands in enumerate(ladder):
        if len(cands) < 2:
            continue
        lam = 1.0 / nets.lambdas[min(q, top)]                 # weighted SSE per bit
        (d1, r1), (d2, r2) = (key_cost(*c) for c in cands)
        if d2 + lam * r2 < tuning.scale_j_bias * (d1 + lam * r1):
            return q
    return len(ladder)


def coding_layer(nets: CodecNetworks, ladder_scale: int) -> tuple[int, bool]:
    """(coding scale, fine) of a ladder candidate's scale: the ladder's upper layer
    (scale 2) is the model's fine networks at native size when it has them, else 2x."""
    if ladder_scale == 2 and nets.fine is not None:
        return 1, True
    return ladder_scale, False


def _gop_crossover(nets: CodecNetworks, frames: list[Frame], tuning: EncoderTuning) -> Callable[[], int]:
    """The GOP's `_scale_crossover`, computed on first use and only once (rate control
    tries several qualities of one GOP; values offering one scale never need it)."""
    return functools.cache(lambda: _scale_crossover(nets, frames[0], tuning))


def _choose_scale(nets: CodecNetworks, quality: int, tuning: EncoderTuning,
                  crossover: Callable[[], int]) -> tuple[int, int]:
    """(scale, model level) of a GOP at --quality `quality`: the only candidate the
    ladder offers, or, when it offers both, 2x from the GOP's crossover up
    (`crossover()`, see `_gop_crossover`: the content decides)."""
    cands = [c for c in tuning.quality_ladder(nets.levels)[quality] if c[0] in tuning.coding_scales]
    if not cands and tuning.coding_scales == (1,):  # the 2x-only top values: the top 1x level
        return (1, min(quality, nets.levels - 1))
    if not cands:
        raise McodecError(f"--quality {quality}: no coding scale of {tuning.coding_scales} offers it")
    if len(cands) == 1:
        return cands[0]
    return cands[1] if quality >= crossover() else cands[0]


def _gop_starts(frames: list[Frame], opts: EncodeOptions) -> list[int]:
    """Where the closed GOPs of a --gop chunk start: 0, and in random access each scene
    cut (low delay finds cuts frame by frame in FrameEncoder; random access codes frames
    out of order, so a cut must start a new closed GOP before coding)."""
    return [0] + (scene_cuts(frames, opts.tuning) if opts.structure == "randomaccess" else [])


def _encode_gop(nets: CodecNetworks, frames: list[Frame], first_index: int, quality: int,
                opts: EncodeOptions, crossover: Callable[[], int] | None = None,
                starts: list[int] | None = None) -> _GopResult:
    """Code one GOP at --quality `quality` (see `mcodec.codec.ladder` and `_choose_scale`);
    `crossover` and `starts` are the GOP's `_gop_crossover` and `_gop_starts` when the
    caller already has them (rate control codes one GOP at several qualities)."""
    tuning = opts.tuning
    scale, level = _choose_scale(nets, quality, tuning, crossover or _gop_crossover(nets, frames, tuning))
    scale, fine = coding_layer(nets, scale)
    enc = FrameEncoder(nets, frames[0].width, frames[0].height, opts.mask, tuning, scale=scale, fine=fine)
    units, psnr = [], []
    starts = _gop_starts(frames, opts) if starts is None else starts
    for a, b in zip(starts, starts[1:] + [len(frames)]):
        for cf in coding_order(b - a, opts.structure, tuning.bi_group):
            frame = frames[a + cf.display]
            q = min(max(level + tuning.level_offset(cf.level), 0), nets.levels - 1)
            unit, recon = enc.encode(frame, first_index + len(units), key=(cf.display == 0), quality=q,
                                     display=first_index + a + cf.display, bi=cf.bi, level=cf.level)
            units.append(unit)
            psnr.append((a + cf.display, frame_psnr_yuv(frame, recon)))
    nbytes = sum(u.unit_size for u in units)
    return _GopResult(units, [p for _, p in sorted(psnr)], nbytes, enc.patches_masked, enc.patches_total,
                      enc.scene_cuts + len(starts) - 1)


def scene_cuts(frames: list[Frame], tuning: EncoderTuning) -> list[int]:
    """Indexes i > 0 of `frames` that start a new scene: frame i predicted from the
    source frame i-1 (block motion, as the encoder searches) is below
    `tuning.scene_cut_psnr` dB PSNR-YUV (0 disables the test)."""
    from mcodec.codec import motion
    from mcodec.codec.motion_search import estimate_motion

    cuts = []
    for i in range(1, len(frames) if tuning.scene_cut_psnr > 0 else 0):
        prev, cur = frames[i - 1], frames[i]
        field = estimate_motion(cur.y, prev.y, block=16, search=tuning.search_range)
        if frame_psnr_yuv(cur, Frame(*motion.compensate(*prev.planes(), field))) < tuning.scene_cut_psnr:
            cuts.append(i)
    return cuts


def _choose_gop(nets: CodecNetworks, frames: list[Frame], first_index: int, opts: EncodeOptions,
                budget_bytes: float, start_q: int) -> tuple[int, _GopResult]:
    """Rate control: the quality whose GOP size best meets `budget_bytes`.

    GOPs start with a key frame, so each trial is an exact, independent encode.
    Walks from `start_q` (the previous GOP's level) up or down until the size
    crosses the budget, then keeps the closer of the two bracketing levels.
    """
    tried: dict[int, _GopResult] = {}
    crossover = _gop_crossover(nets, frames, opts.tuning)
    starts = _gop_starts(frames, opts)                    # the same cuts at every trial quality

    def trial(q: int) -> _GopResult:
        if q not in tried:
            tried[q] = _encode_gop(nets, frames, first_index, q, opts, crossover, starts)
        return tried[q]

    q = start_q
    step = 1 if trial(q).nbytes < budget_bytes else -1
    while 0 <= q + step < len(opts.tuning.quality_ladder(nets.levels)):
        nxt = q + step
        if (trial(nxt).nbytes < budget_bytes) != (step == 1):
            break  # crossed the budget between q and nxt
        q = nxt
    best = min(tried, key=lambda k: abs(tried[k].nbytes - budget_bytes))
    return best, tried[best]


def _coding_flags(options: EncodeOptions, levels: int, fine: bool = False) -> int:
    """The header's CODING_FLAG_* bits: OBMC when the encoder uses it; when a GOP may be
    coded in the upper layer (any quality under --bitrate, else the --quality value's
    ladder), FINE if the model has fine networks (`fine`), else SCALE2 (2x)."""
    tuning = options.tuning
    may_2x = 2 in tuning.coding_scales and (
        bool(options.bitrate)
        or any(scale == 2 for scale, _ in tuning.quality_ladder(levels)[options.quality]))
    upper = bs.CODING_FLAG_FINE if fine else bs.CODING_FLAG_SCALE2
    return ((bs.CODING_FLAG_OBMC if tuning.obmc else 0)
            | (upper if may_2x else 0)
            | (bs.CODING_FLAG_LOOPFILTER if tuning.loop_filter else 0))


def _open_output(dst: str, overwrite: bool) -> tuple[BinaryIO, str | None]:
    """The binary output and its temporary path (None for stdout)."""
    if dst == "-":
        return sys.stdout.buffer, None
    parent = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(parent):
        raise McodecError(f"output folder does not exist: {parent}")
    if os.path.lexists(dst) and not overwrite:
        raise McodecError(f"output exists: {dst} (use -y to overwrite)")
    tmp = temporary_beside(dst)
    return open(tmp, "w+b"), tmp


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
    levels = len(options.tuning.quality_ladder(networks.levels if networks is not None
                                               else zoo.get_model(model_id).quality_levels))
    if not 0 <= options.quality < levels:
        raise McodecError(f"--quality must be in 0..{levels - 1}, got {options.quality}")
    start = time.perf_counter()
    # The input is opened (and its errors reported) before torch and the weights load.
    with open_video(src, size=size, fps=fps, pix_fmt=pix_fmt, max_frames=options.frames,
                    warn=warn) as reader:
        nets = networks or zoo.load_encoders(model_id, device)
        info = reader.info
        mask_mode = (bs.MASK_AUTO if options.mask == "auto" else bs.MASK_OFF if options.mask == "off"
                     else bs.MASK_FIXED)
        header = bs.SequenceHeader(
            width=info.width, height=info.height, fps_num=info.fps.numerator,
            fps_den=info.fps.denominator, frame_count=0,
            coding=bs.CodingParams(
                gop=options.gop,
                quality=bs.QUALITY_PER_FRAME if options.bitrate else options.quality,
                patch_size=PATCH, search_range=options.tuning.search_range, mask_mode=mask_mode,
                mask_ratio_permille=int(round(1000 * options.mask)) if mask_mode == bs.MASK_FIXED else 0,
                flags=_coding_flags(options, nets.levels, nets.fine is not None)),
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
                        q, result = _choose_gop(nets, gop, frames, options, budget, q)
                    else:
                        result = _encode_gop(nets, gop, frames, q, options)
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


def _networks_for(h: bs.SequenceHeader, device: str,
                  networks: CodecNetworks | DecoderNetworks | None) -> DecoderNetworks:
    """The decoders of the model a stream's header names: of `networks` if given (digest
    checked), else from the zoo (`zoo.load_decoders`: no CompressAI import where the model
    ships integer networks)."""
    if networks is None:
        return zoo.load_decoders(h.model_name, device, digest=h.model_sha256)
    if networks.digest != h.model_sha256:
        raise ModelError(f"stream needs model {h.model_name!r} "
                         f"(sha256 {h.model_sha256.hex()[:16]}...), given {networks.model_id!r} "
                         f"(sha256 {networks.digest.hex()[:16]}...)")
    return networks.decoders() if isinstance(networks, CodecNetworks) else networks


def iter_decode(source: BinaryIO, *, device: str = "cpu", networks: CodecNetworks | DecoderNetworks | None = None,
                max_pixels: int | None = None) -> tuple[StreamInfo, Iterator[Frame]]:
    """Parse the header of `source` and return (info, a lazy iterator of decoded frames).

    Frames come one at a time in display order (memory bounded by the reorder
    depth: the pictures waiting for output and the references); every frame's
    hash is checked against the encoder's reconstruction, and for version-4
    streams the END unit's digest of all frame hashes too. `max_pixels` caps
    the frame size (default DEFAULT_MAX_DECODE_PIXELS).

    Raises:
        BitstreamError: damaged stream (names the unit and offset), also while iterating.
        ModelError: the stream needs a model this installation does not have.
    """
    reader = bs.BitstreamReader(source)
    h = reader.header
    _check_decode_size(h, max_pixels)  # before torch and the weights load
    nets = _networks_for(h, device, networks)
    dec = FrameDecoder.for_stream(nets, h, reader.layout_version)

    def frames() -> Iterator[Frame]:
        pending: dict[int, Frame] = {}   # decoded, waiting for their display turn
        shown = 0
        digest = hashlib.blake2b(digest_size=16)
        for offset, unit in reader.units():
            if isinstance(unit, bs.FrameUnit):
                pending[unit.display] = dec.decode(unit)
                digest.update(dec.last_hash)
                while shown in pending:
                    yield pending.pop(shown)
                    shown += 1
            elif isinstance(unit, bs.EndUnit) and unit.digest is not None \
                    and unit.digest != digest.digest():
                raise BitstreamError("end unit: the digest of the decoded frames' hashes does not "
                                     "match the encoder's", offset)
        if pending:  # the container checks that display indexes are a permutation
            raise BitstreamError(f"frames {sorted(pending)} were never due for display")

    return StreamInfo(h.width, h.height, h.fps, h.model_name), frames()


@dataclass
class LossReport:
    """Filled in by `salvage_decode` while it runs (complete once its iterator is exhausted).

    Attributes:
        lost: display indexes of frames that could not be decoded (damaged,
            missing, or predicted from a lost frame); each was replaced by a
            copy of the previous output frame in display order (mid-grey
            before the first decoded frame).
        damage: one message per damaged region of the stream ("... at byte N").
    """

    lost: list[int]
    damage: list[str]


def salvage_decode(data: bytes, *, device: str = "cpu", networks: CodecNetworks | DecoderNetworks | None = None,
                   max_pixels: int | None = None) -> tuple[StreamInfo, Iterator[Frame], LossReport]:
    """Decode every intact GOP of a damaged stream (the CLI's ``--keep-going``).

    Frames come out in display order, one per frame the stream should hold:
    decoded frames are hash-verified as always; a frame that is damaged,
    missing, or predicted from a lost frame is concealed by repeating the
    previous output frame, and listed in the report. Decoding resumes at the
    next intact key frame.

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
        total = max((u.display for _, u in found.frames), default=-1) + 1

    def decoded() -> Iterator[tuple[bs.FrameUnit, Frame | None]]:
        """(unit, its frame or None when lost) in decode order."""
        version = bs.BitstreamReader(io.BytesIO(data), size=len(data), salvaging=True).layout_version
        dec = FrameDecoder.for_stream(nets, h, version)
        previous = -1
        for _, unit in found.frames:
            if unit.display >= total:
                continue
            if unit.frame_type != bs.FRAME_KEY and unit.display == unit.index:
                # Units missing before this one (streams of version <= 3, display = index) are lost.
                for d in range(previous + 1, unit.index):
                    dec.store(d, None)
            previous = unit.index
            frame = None
            if unit.frame_type == bs.FRAME_KEY or not dec.references_lost(unit):
                try:
                    frame = dec.decode(unit)
                except BitstreamError as err:
                    report.damage.append(str(err))
            if frame is None:
                dec.store(unit.display, None)  # frames predicted from it are lost too
            yield unit, frame

    def frames() -> Iterator[Frame]:
        last = Frame.grey(h.width, h.height)
        pending: dict[int, Frame | None] = {}
        shown = 0

        def show(upto: int) -> Iterator[Frame]:
            nonlocal shown, last
            while shown < upto:
                frame = pending.pop(shown, None)
                if frame is None:
                    report.lost.append(shown)
                    frame = last
                last = frame
                shown += 1
                yield frame

        for unit, frame in decoded():
            pending[unit.display] = frame
            # Display indexes that can no longer come: before a key frame (closed
            # GOPs), and more than the container's reorder bound behind this unit.
            final = unit.display if unit.frame_type == bs.FRAME_KEY else unit.index - bs.MAX_REORDER
            yield from show(min(final, total))
            while shown in pending:
                yield from show(shown + 1)
        yield from show(total)

    return StreamInfo(h.width, h.height, h.fps, h.model_name), frames(), report


def decode(src: str, dst: str, *, device: str = "cpu", overwrite: bool = False,
           progress: bool = False, networks: CodecNetworks | DecoderNetworks | None = None,
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
