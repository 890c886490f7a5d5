"""The encoder's per-frame decisions and the syntax they produce; closed loop.

    key frame:       intra network on the source -> latents
    predicted frame: motion search (`motion_search`) on the reconstruction of the
                     nearest coded frame before it (bi frame: and after it)
                     -> (overlapped) compensation -> per-patch mask decision
                     (`mask_decision`, J = D + lambda R on estimates) -> inter network
                     on the visible patches' residual; all patches masked -> rebuilt
                     frame; a suspected scene cut coded as a key frame when cheaper
    every frame:     loop filter fitted and sent when it pays in J

Each frame is reconstructed by the decoder's own `FrameDecoder` (which owns the
reference), so the encoder predicts from exactly what the decoder will have.
Distortions are in the training loss's units (`distortion.loss_patch_sse`),
lambda = 1 / (the model level's training lambda), i.e. weighted SSE per bit.
"""

from __future__ import annotations

import numpy as np

from mcodec.codec import bitstream as bs
from mcodec.codec import loopfilter, masking, motion, mvcoding
from mcodec.codec.distortion import LUMA_SHARE, frame_psnr_yuv, loss_patch_sse
from mcodec.codec.frame import Frame
from mcodec.codec.mask_decision import choose_mask, choose_mask_coded, mask_worst_kept
from mcodec.codec.motion_search import estimate_bi_motion, estimate_motion
from mcodec.codec.options import EncoderTuning
from mcodec.codec.reconstruct import (
    FrameDecoder,
    Picture,
    add_residual,
    forward_field,
    reference_distances,
    residual_planes,
    source_at,
    to_planes,
    to_tensor,
)
from mcodec.codec.syntax import FrameSyntax, Motion
from mcodec.codec.zoo import CodecNetworks


def _pad_to(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-pad a per-patch map to the latent grid (padding patches have no distortion)."""
    out = np.zeros(shape, dtype=np.float64)
    out[:a.shape[0], :a.shape[1]] = a
    return out


class FrameEncoder:
    """Chooses and produces the syntax of each frame of one GOP.

    One encoder codes frames in one coding layer (see `mcodec.codec.ladder`): at
    scale 1 or 2 by the model's networks (at 2 every frame is upsampled,
    `resample.upsample_frame`, coded at twice the width and height, and the
    reconstruction is downsampled for output), or, with `fine`, at scale 1 by the
    model's fine networks (one latent per 8x8 luma patch).
    """

    def __init__(self, nets: CodecNetworks, width: int, height: int, mask: str | float,
                 tuning: EncoderTuning, scale: int = 1, fine: bool = False) -> None:
        if scale not in (1, 2) or (fine and scale != 1):
            raise ValueError(f"coding scale must be 1 or 2 (1 with the fine networks), got {scale}")
        if fine and nets.fine is None:
            raise ValueError(f"model {nets.model_id!r} has no fine networks")
        self.mask, self.tuning, self.scale, self.fine = mask, tuning, scale, fine
        self.nets = nets.fine if fine else nets    # the networks of this layer
        self.recon = FrameDecoder(nets.decoders(), width, height, obmc=tuning.obmc, scale2=scale == 2,
                                  loopfilter=tuning.loop_filter, fine=fine)
        self.geo = self.recon.geometry(scale, fine)
        self.patches_total = 0
        self.patches_masked = 0
        self.scene_cuts = 0      # predicted frames coded as key frames instead
        self._level = 0          # temporal level of the frame being coded
        self._search = tuning.search_range * scale   # its motion search range
        self._direct = None      # a bi frame's temporal direct vectors (reconstruct.FrameDecoder.direct)

    def patch_distortion(self, a, b) -> np.ndarray:
        """(rows, cols) per-patch distortion of the decisions (weighted SSE)."""
        return loss_patch_sse(a, b, self.geo.patch, self.tuning.decision_chroma_weight)

    def encode(self, frame: Frame, index: int, key: bool, quality: int, display: int | None = None,
               bi: bool = False, level: int = 0) -> tuple[bs.FrameUnit, Frame]:
        """Code one frame at model level `quality` (key frames: + key_quality_offset, clamped);
        return its unit (which records the level used) and the decoder's output frame.

        `index` is the decode index, `display` the display index (default: the
        same). A predicted frame references the nearest coded frame before it in
        display order; with `bi` also the nearest after it. A predicted frame in
        display order (display == index) is coded as a key frame instead when
        the encoder finds it a scene cut (see `EncoderTuning.scene_cut_psnr`).
        `level` is the frame's temporal level (its masking lambda,
        `EncoderTuning.level_mask_lambda`)."""
        import torch

        display = index if display is None else display
        src = source_at(frame, self.scale)
        before, after = self.recon.neighbours(display)
        if bi and (before is None or after is None):
            raise ValueError(f"frame {display}: a bi frame needs coded frames on both sides")
        refs = [] if key or before is None else [before, after] if bi else [before]
        distances = reference_distances(display, refs)
        self._level = level
        # The search range grows with the distance to the farthest reference.
        self._search = self.tuning.search_range * self.scale * min(max(*distances, 1),
                                                                   self.tuning.motion_range_growth)
        with torch.no_grad():
            coded = None
            if bi:
                coded = self._encode_bi(src, quality, self._picture(before), self._picture(after), distances)
            elif not key and before is not None:
                coded = self._encode_inter(src, quality, self._picture(before).frame,
                                           allow_cut=display == index)
                self.scene_cuts += coded is None
            if coded is None:
                quality = min(quality + self.tuning.key_quality_offset, self.nets.levels - 1)
                coded = self._encode_key(src, quality)
            syntax, recon = coded
        flags = bs.FRAME_FLAG_SCALE2 if self.scale == 2 or self.fine else 0   # the upper layer
        if self.tuning.loop_filter:
            chroma = LUMA_SHARE * self.tuning.decision_chroma_weight   # the weighted SSE's plane weights
            filt, filtered = loopfilter.fit(
                recon.planes(), frame.planes(), (LUMA_SHARE, chroma, chroma),
                1.0 / self.nets.lambdas[quality],
                lambda planes: self.recon.output(Frame(*planes), self.scale).planes(), self.scale)
            if filt.active:
                syntax = syntax.with_loop_filter(filt)
                recon = Frame(*filtered)
        out = self.recon.output(recon, self.scale)
        key_frame = syntax.frame_type == bs.FRAME_KEY
        if key_frame:
            distances = (0, 0)   # (also a predicted frame coded as a key frame at a scene cut)
        direct = self._direct if bi else None
        unit = bs.FrameUnit(index=index, frame_type=syntax.frame_type, quality=quality,
                            frame_hash=bs.frame_hash(*out.planes()),
                            segments=syntax.to_segments(distances, direct),
                            flags=flags | syntax.flags, display=display)
        self.recon.store(display, Picture(recon, self.scale, forward_field(syntax), distances[0], self.fine),
                         key=key_frame)
        return unit, out

    def _picture(self, display: int) -> Picture:
        picture = self.recon.pictures[display]
        assert picture is not None and picture.scale == self.scale
        return picture

    def _encode_key(self, frame: Frame, q: int) -> tuple[FrameSyntax, Frame]:
        x, geometry = to_tensor(frame.planes(), self.nets)
        comp = self.nets.intra.compress(x, q, packed=True)
        return FrameSyntax(bs.FRAME_KEY, latents=tuple(comp.strings)), Frame(*to_planes(comp.x_hat, geometry))

    def _motion_lambda(self, q: int) -> float:
        """The motion search's lambda at model level q, SAD per bit."""
        return float(np.sqrt(1.0 / self.nets.lambdas[q])) * self.tuning.motion_lambda_scale

    def _encode_inter(self, frame: Frame, q: int, ref: Frame, allow_cut: bool = True
                      ) -> tuple[FrameSyntax, Frame] | None:
        """Code `frame` as a predicted frame from `ref`, or return None when it should be a
        key frame (only considered with `allow_cut`)."""
        geo = self.geo
        field = estimate_motion(frame.y, ref.y, block=geo.motion_block,
                                search=self._search, lam=self._motion_lambda(q),
                                exact=self.tuning.motion_exact)
        pred = self.recon.compensate(*ref.planes(), field)
        return self._code_predicted(frame, q, pred, field, (bs.FRAME_INTER, bs.FRAME_REBUILT), allow_cut)

    def _encode_bi(self, frame: Frame, q: int, past: Picture, future: Picture,
                   distances: tuple[int, int]) -> tuple[FrameSyntax, Frame]:
        """Code `frame` as a bi frame predicted from `past` and `future` (`distances` frames away)."""
        geo = self.geo
        direct = self._direct = self.recon.direct([past, future], distances)
        field = estimate_bi_motion(frame.y, past.frame.y, future.frame.y, block=geo.motion_block,
                                   search=self._search,
                                   lam=self._motion_lambda(q) * self.tuning.bi_motion_lambda_scale,
                                   distances=distances, direct=direct,
                                      exact=self.tuning.bi_exact_modes)
        pred = motion.compensate_bi(past.frame.planes(), future.frame.planes(), field, self.recon.compensate)
        coded = self._code_predicted(frame, q, pred, field, (bs.FRAME_BI_INTER, bs.FRAME_BI_REBUILT),
                                     allow_cut=False)
        assert coded is not None
        return coded

    def _code_predicted(self, frame: Frame, q: int, pred, mv: Motion, types: tuple[int, int],
                        allow_cut: bool) -> tuple[FrameSyntax, Frame] | None:
        """The residual and mask decisions of a predicted frame with prediction `pred` and
        motion `mv`; `types` = (frame type with residual, without)."""
        import torch

        lam = 1.0 / self.nets.lambdas[q]            # weighted SSE per bit
        geo = self.geo
        hy, wy = geo.latent_shape
        d_mask = _pad_to(self.patch_distortion(frame, pred), (hy, wy))
        rebuilt = FrameSyntax(types[1], motion=mv)
        if self.mask == 1.0 or (self.mask != "off" and not d_mask.any()):
            self.patches_total += hy * wy
            self.patches_masked += hy * wy
            return rebuilt, Frame(*pred)
        x, geometry = to_tensor(residual_planes(frame, pred), self.nets)
        net = self.nets.inter
        lam_mask = lam * self.tuning.mask_lambda_scale * self.tuning.level_lambda(self._level)
        cut_suspect = allow_cut and frame_psnr_yuv(frame, Frame(*pred)) < self.tuning.scene_cut_psnr
        est = d_code = None
        if self.mask != "off":
            # Decisions on an estimate (float32 synthesis, no rANS): ~40 % faster
            # than a trial compress; the frame itself is then coded exactly.
            est = net.estimate(x, q)
            coded = add_residual(pred, to_planes(est.x_hat, geometry))
            d_code = _pad_to(self.patch_distortion(frame, coded), (hy, wy))
        if self.mask == "off":
            mask = np.zeros((hy, wy), dtype=bool)
        elif self.mask == "auto":
            r_code = est.position_bits.numpy()                       # (hy, wy) bits
            decide = choose_mask_coded if self.tuning.mask_map_bits else choose_mask
            mask = decide(d_mask, d_code, r_code, lam_mask)
            # Whole-frame choice: motion only, when that is cheaper in J = D + lam*R.
            if d_mask.sum() <= d_code.sum() + lam_mask * est.total_bits:
                mask[:] = True
            elif mask.any() and self.tuning.mask_check:
                mask = self._check_mask(frame, pred, x, geometry, q, est, mask, d_mask, d_code, r_code,
                                        lam_mask)
        else:
            mask = mask_worst_kept(d_mask - d_code, float(self.mask))
        if cut_suspect and self._key_is_cheaper(frame, q, lam, x, geometry, pred, est, d_mask, d_code,
                                                mask, 8 * len(mvcoding.encode_motion(mv))):
            return None
        self.patches_total += hy * wy
        self.patches_masked += int(mask.sum())
        if mask.all():
            return rebuilt, Frame(*pred)
        comp = net.compress(x, q, mask=torch.from_numpy(mask), packed=True,
                            analysis=est.analysis if est is not None else None)
        recon = add_residual(pred, to_planes(comp.x_hat, geometry))
        return FrameSyntax(types[0], latents=tuple(comp.strings), motion=mv, mask=mask), recon

    def _check_mask(self, frame: Frame, pred, x, geometry, q: int, est, mask: np.ndarray,
                    d_mask: np.ndarray, d_code: np.ndarray, r_code: np.ndarray, lam: float) -> np.ndarray:
        """`EncoderTuning.mask_check`: the partial `mask` judged on its estimated output.

        Per-patch choices see a masked patch as the prediction and a coded one as
        the unmasked estimate; the decoder's synthesis instead fills masked
        patches from their coded neighbours (and masked anchors change the
        context). Here the mask is estimated as coded and the frame takes the
        cheapest in J = D + lam * R of: this mask, (with mask_check 2) it with
        the patches unmasked whose masked output is worse than coding them, no
        mask, and motion only (every patch masked)."""
        import torch

        hy, wy = mask.shape
        best_j, best = float(d_code.sum()) + lam * est.total_bits, np.zeros_like(mask)  # no mask
        if float(d_mask.sum()) < best_j:
            best_j, best = float(d_mask.sum()), np.ones_like(mask)                     # motion only
        for round_ in range(self.tuning.mask_check):
            masked = self.nets.inter.estimate(x, q, mask=torch.from_numpy(mask), analysis=est.analysis)
            out = add_residual(pred, to_planes(masked.x_hat, geometry))
            d_out = _pad_to(self.patch_distortion(frame, out), (hy, wy))
            j = float(d_out.sum()) + lam * masked.total_bits
            if self.tuning.mask_map_bits:   # the map itself (no mask and motion only send none)
                j += lam * 8 * len(masking.encode_mask(mask))
            if j < best_j:
                best_j, best = j, mask
            worse = mask & (d_out > d_code + lam * r_code)   # masked, and coding it is cheaper
            if round_ + 1 == self.tuning.mask_check or not worse.any() or worse.sum() == mask.sum():
                break
            mask = mask & ~worse
        return best

    def _key_is_cheaper(self, frame: Frame, q: int, lam: float, x, geometry, pred, est, d_mask, d_code,
                        mask: np.ndarray, side_bits: float) -> bool:
        """Scene-cut test: is coding `frame` as a key frame (at level q's lambda) cheaper
        in J = D + lam*R than the predicted-frame choice (`mask`) from the estimates?"""
        hy, wy = self.geo.latent_shape
        if est is None:  # mask "off": the residual estimate was not needed until now
            est = self.nets.inter.estimate(x, q)
            coded = add_residual(pred, to_planes(est.x_hat, geometry))
            d_code = _pad_to(self.patch_distortion(frame, coded), (hy, wy))
        r_code = est.position_bits.numpy()
        z_bits = est.total_bits - float(r_code.sum())
        visible = ~mask
        j_inter = (float(np.where(mask, d_mask, d_code).sum())
                   + lam * (float(r_code[visible].sum()) + (z_bits if visible.any() else 0.0) + side_bits))
        xk, gk = to_tensor(frame.planes(), self.nets)
        key = self.nets.intra.estimate(xk, q)
        d_key = float(self.patch_distortion(frame, Frame(*to_planes(key.x_hat, gk))).sum())
        return d_key + lam * key.total_bits < j_inter
