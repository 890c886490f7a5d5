"""The encoding side of one latent codec: its dataflow, and an encoder that needs no CompressAI.

`latent_decoder` holds the decoding dataflow and `LatentDecoder`; this module is its
mirror for encoding:

* the dataflow, written once against `EncoderParts` (an `ExactParts` that can also
  analyse a frame): `estimate` (what coding a frame would cost and give, for the
  encoder's decisions) and `compress` (one frame -> its rANS strings and the
  decoder's exact reconstruction). `IntraCodec.compress` / `.estimate` are these;
* `LatentEncoder`, an `EncoderParts` built straight from a bundle's tensors for
  models that ship integer networks: a `LatentDecoder` plus the float32 analysis
  (g_a, h_a, their gains) and the float32 synthesis the estimate uses. Loading it
  imports no CompressAI (~3 s of start-up: its package imports its datasets,
  torch_geometric and scipy.stats), and it codes byte-identical streams:
  its layers are CompressAI's computed with the same torch operations, in order
  (`latent_decoder.StoredGDN` for GDN).

Dataflow of `compress` (x: (1, 6, h, w); rows x cols latent)::

    x --analyse(q)--> y (1, M, rows, cols), z_sym (hyper-latent symbols), hs (hyper-decoded)
    (hs, y, mask) --latent_decoder.coding_params--> exact parameters p
    (y, p) --y tables--> y_sym, y_hat (masked positions: symbol 0, y_hat = mean)
    z_sym, y_sym --rANS--> strings          y_hat --synthesize(q)--> x_hat (exact)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mcodec.codec import entropy as ent
from mcodec.codec import latent_decoder as ld
from mcodec.codec.latent_decoder import (
    HYPER_STRIDE,
    ExactParts,
    LatentDecoder,
    check_mask,
    check_quality,
    stored_gdn,
)

LIKELIHOOD_MIN = 1e-9   # IntraCodec.likelihood_lower_bound


@dataclass(frozen=True, eq=False)
class Compressed:
    """Result of `compress` for one frame.

    Attributes:
        strings: rANS streams: (y_anchor, y_nonanchor, z) with the checkerboard
            context, (y, z) without; one string when packed. With a mask the y
            streams carry only the visible positions (b"" when none are).
        shape: (rows, cols) of the latent y; everything else derives from it.
        x_hat: (1, 6, h, w) encoder-side reconstruction on the 8-bit grid k/255,
            bit-identical to what `decompress` returns (None when not requested).
    """

    strings: tuple[bytes, ...]
    shape: tuple[int, int]
    x_hat: Tensor | None = None


@dataclass(frozen=True, eq=False)
class Analysis:
    """The encoder front end of one frame at one quality, which `estimate` computes and
    `compress(..., analysis=)` reuses instead of running it again (same tensors, so the
    stream is the same byte for byte).

    Attributes:
        input_shape: (1, 6, h, w) of the frame it analysed (checked on reuse).
        quality: the level it was computed at.
        y: (1, M, rows, cols) float32 latent.
        z_sym: (1, N, ...) int32 hyper-latent symbols.
        hs64: the exact hyper-decoder output.
        params: the unmasked frame's grid-quantized entropy parameters.
    """

    input_shape: tuple[int, ...]
    quality: int
    y: Tensor
    z_sym: Tensor
    hs64: Tensor
    params: ent.EntropyParams


@dataclass(frozen=True, eq=False)
class Estimate:
    """Result of `estimate` (encoder decisions; nothing is coded).

    Attributes:
        x_hat: (1, 6, h, w) float32 reconstruction on the 8-bit grid, approximate
            (float32 synthesis; `compress` gives the exact one).
        position_bits: (rows, cols) float32 estimated y bits per latent position (CPU):
            sum over the M channels of -log2(likelihood) under the exact coding
            path's grid-quantized parameters; z excluded (sent whatever the mask).
            The rANS size of the y strings is close to ``position_bits.sum() / 8``
            bytes; masking a position changes the other positions' bits only
            through the checkerboard context of its non-anchor neighbours.
        total_bits: estimated bits of the frame (y estimate of the visible positions +
            the real z string): the whole frame when no mask was given.
        analysis: the front end, for `compress(..., analysis=)`.
    """

    x_hat: Tensor
    position_bits: Tensor
    total_bits: float
    analysis: Analysis | None = None


class EncoderParts(ExactParts, Protocol):
    """What the encoding dataflow needs of a network beyond `ExactParts`."""

    def check_frame(self, x: Tensor, quality: int) -> int:
        """Validate one (1, 6, h, w) frame and the quality; return the quality (ValueError)."""
        ...

    def analyse(self, x: Tensor, q: int) -> tuple[Tensor, Tensor, Tensor]:
        """(y, z symbols int32, exact hyper-decoder output) of frame `x` at level `q`."""
        ...

    def approximate_synthesis(self, y_hat: Tensor, q: int) -> Tensor:
        """(1, 6, h, w) float32 reconstruction in [0, 1], not rounded (estimates only)."""
        ...


def gaussian_likelihood(values: Tensor, scales: Tensor) -> Tensor:
    """P(|v| bin of width 1) under N(0, scale): values are (y - mean)."""
    v = values.abs()
    inv = 1.0 / scales
    c = -(2 ** -0.5)
    upper = 0.5 * torch.erfc(c * (0.5 - v) * inv)
    lower = 0.5 * torch.erfc(c * (-0.5 - v) * inv)
    return upper - lower


def _mask_changes_params(parts: ExactParts, mask: Tensor | None, rows: int, cols: int) -> bool:
    """Whether `mask` gives other entropy parameters than no mask: only a masked
    anchor does (it enters the checkerboard context as its mean)."""
    if mask is None or not parts.context:
        return False
    return bool((mask & ld.anchor_mask(rows, cols).to(mask.device)).any())


def _encode_y(y_tables: ent.Tables, symbols: Tensor, indexes: Tensor) -> bytes:
    """rANS string of (M, k) symbols; b"" when k = 0 (the coder crashes on no symbols)."""
    if symbols.numel() == 0:
        return b""
    return ent.encode_gaussian(y_tables, symbols, indexes)


def _front_end(parts: EncoderParts, x: Tensor, quality: int, mask: Tensor | None,
               analysis: Analysis | None) -> tuple[int, Tensor, Tensor, Tensor, Tensor | None,
                                                    ent.EntropyParams]:
    """What `compress` and `estimate` share: (q, y, z_sym, hs64, mask on y's device or None,
    the entropy parameters under `mask`). `analysis` (of this same `x` and quality)
    replaces the analysis and hyper networks, and its parameters are reused unless the
    mask hides an anchor."""
    q = parts.check_frame(x, quality)
    if analysis is not None:
        if analysis.quality != q or analysis.input_shape != tuple(x.shape):
            raise ValueError("analysis of another frame or quality")
        y, z_sym, hs64 = analysis.y, analysis.z_sym, analysis.hs64
    else:
        y, z_sym, hs64 = parts.analyse(x, q)
    hy, wy = int(y.shape[2]), int(y.shape[3])
    mk = check_mask(mask, hy, wy)
    if mk is not None:
        mk = mk.to(y.device)
    if analysis is not None and not _mask_changes_params(parts, mk, hy, wy):
        p = analysis.params
    else:
        p, _ = ld.coding_params(parts, hs64, y, mask=mk)
    return q, y, z_sym, hs64, mk, p


@torch.no_grad()
def compress(parts: EncoderParts, x: Tensor, quality: int, reconstruct: bool = True,
             mask: Tensor | None = None, packed: bool = False,
             analysis: Analysis | None = None) -> Compressed:
    """Entropy-code one frame.

    Args:
        x: (1, 6, h, w) in [0, 1], h and w multiples of the network's tensor stride.
        quality: integer level in 0..levels-1.
        reconstruct: also return the decoder's reconstruction (needed as a
            reference by predictive coding).
        mask: optional (rows, cols) bool tensor over the latent grid, True = masked:
            no symbol of any channel is coded there and both sides use the entropy
            model's mean (grid-quantized, so exact) as y_hat. The decoder must be
            given the same mask. None (or all False) gives the unmasked stream.
        packed: one rANS string holding z, then each y pass in decode order
            (`entropy.PackedWriter`; format version 4) instead of one string each.
        analysis: `estimate(parts, x, quality).analysis` of this same `x`: its front
            end is reused (the analysis and hyper networks do not run twice).

    Returns:
        `Compressed`; an all-True mask still returns the strings (the y strings are
        then near-empty rANS flushes).
    """
    q, y, z_sym, _, mk, p = _front_end(parts, x, quality, mask, analysis)
    hy, wy = int(y.shape[2]), int(y.shape[3])
    y_tab, z_tab = parts.y_tables(), parts.z_tables()
    y_sym, y_hat = ent.quantize_to_tables(y_tab, y, p)
    if mk is not None:  # symbol 0 at masked positions: y_hat = mean, as the decoder has it
        y_sym = torch.where(mk, torch.zeros_like(y_sym), y_sym)
        y_hat = torch.where(mk, p.means, y_hat)
    sels = ld.coded_selections(parts.context, hy, wy, mk)
    if packed:
        writer = ent.PackedWriter()
        writer.add_factorized(z_tab, z_sym[0])
        for sel in sels:
            writer.add(y_tab, y_sym[0][:, sel], p.indexes[0][:, sel])
        strings: tuple[bytes, ...] = (writer.finish(),)
    else:
        z_string = ent.encode_factorized(z_tab, z_sym[0])
        strings = (*(_encode_y(y_tab, y_sym[0][:, sel], p.indexes[0][:, sel]) for sel in sels), z_string)
    x_hat = parts.synthesize(y_hat, q) if reconstruct else None
    return Compressed(strings=strings, shape=(hy, wy), x_hat=x_hat)


@torch.no_grad()
def estimate(parts: EncoderParts, x: Tensor, quality: int, mask: Tensor | None = None,
             analysis: Analysis | None = None) -> Estimate:
    """What coding `x` would cost and give, for the encoder's decisions.

    One analysis and the exact entropy parameters (as `compress`), but no rANS
    coding of y and a float32 synthesis: the reconstruction is close to, not
    bit-identical with, `compress(parts, x, q, mask=mask).x_hat`. Use it to choose
    a mask; code the frame with `compress` (passing `analysis`).

    Args:
        mask: as in `compress`: (rows, cols) bool, True = masked. Masked positions
            take the entropy model's mean and cost no bits (`position_bits` 0
            there); None estimates the unmasked frame.
        analysis: an earlier estimate's `analysis` of this same `x` (the analysis
            and hyper networks do not run again; the entropy parameters neither,
            unless the mask hides an anchor).
    """
    q, y, z_sym, hs64, mk, p = _front_end(parts, x, quality, mask, analysis)
    hy, wy = int(y.shape[2]), int(y.shape[3])
    if analysis is None:
        # The analysis holds the unmasked parameters, whatever this estimate's mask
        # (`compress` reuses them for another mask, or none).
        plain = ld.coding_params(parts, hs64, y)[0] if _mask_changes_params(parts, mk, hy, wy) else p
        analysis = Analysis(tuple(x.shape), q, y, z_sym, hs64, plain)
    _, y_hat = ent.quantize_to_tables(parts.y_tables(), y, p)
    lik = gaussian_likelihood(y_hat - p.means, p.scales).clamp_min(LIKELIHOOD_MIN)
    bits = (-torch.log2(lik)).sum(dim=1)[0].to(torch.float32).cpu()
    if mk is not None:  # as the decoder has it: the mean, and no bits
        y_hat = torch.where(mk, p.means, y_hat)
        bits = torch.where(mk.reshape(hy, wy).cpu(), torch.zeros_like(bits), bits)
    z_bits = 8 * len(ent.encode_factorized(parts.z_tables(), z_sym[0]))
    x_hat = parts.approximate_synthesis(y_hat, q)
    return Estimate(x_hat=torch.round(x_hat * 255.0) / 255.0, position_bits=bits,
                    total_bits=float(bits.sum()) + z_bits, analysis=analysis)


def hyper_pad(y: Tensor) -> Tensor:
    """Replicate-pad the latent to a multiple of HYPER_STRIDE (not transmitted)."""
    ph = -y.shape[2] % HYPER_STRIDE
    pw = -y.shape[3] % HYPER_STRIDE
    if ph or pw:
        y = F.pad(y, (0, pw, 0, ph), mode="replicate")
    return y


# -- LatentEncoder: the float32 layers from a bundle's tensors ------------------------


def _conv(tensors: dict[str, Tensor], prefix: str, stride: int, transposed: bool = False) -> nn.Module:
    """CompressAI's `conv` / `deconv` (padding k // 2; a transposed one output_padding
    stride - 1) with the weights stored under `prefix`; the kernel size from the weight."""
    w = tensors[prefix + "weight"].to(torch.float32)
    k = int(w.shape[-1])
    if transposed:
        layer: nn.Module = nn.ConvTranspose2d(w.shape[0], w.shape[1], k, stride=stride, padding=k // 2,
                                              output_padding=stride - 1)
    else:
        layer = nn.Conv2d(w.shape[1], w.shape[0], k, stride=stride, padding=k // 2)
    layer.load_state_dict({"weight": w, "bias": tensors[prefix + "bias"].to(torch.float32)})
    return layer


@dataclass(frozen=True, eq=False)
class LatentEncoder:
    """The encoder of one network of a bundle with integer networks (no CompressAI).

    Attributes:
        decoder: the network's `LatentDecoder` (tables, gains, exact networks).
        tensor_stride: the 6-channel tensor's padding multiple (ModelConfig.tensor_stride).
        g_a, h_a: float32 analysis and hyper-analysis (IntraCodec's layers).
        g_s: float32 synthesis, for `estimate` only.
        log_gain, log_hgain: (levels, M) / (levels, N) float32 encoder gains (log).
    """

    decoder: LatentDecoder
    tensor_stride: int
    g_a: nn.Sequential
    h_a: nn.Sequential
    g_s: nn.Sequential
    log_gain: Tensor
    log_hgain: Tensor

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], prefix: str, decoder: LatentDecoder,
                     latent_stride: int, device: str | torch.device = "cpu") -> LatentEncoder:
        """Build from a bundle's tensors under `prefix` ("intra." / "inter."), for a
        network of `latent_stride` 16 or 8 (IntraCodec's layer layout). Raises KeyError
        on a missing tensor, ValueError on inconsistent ones."""
        t, p = tensors, prefix
        mid = 2 if latent_stride == 16 else 1   # IntraCodec: the middle layers' stride
        g_a = nn.Sequential(_conv(t, p + "g_a.0.", 1), stored_gdn(t, p + "g_a.1.", False),
                            _conv(t, p + "g_a.2.", mid), stored_gdn(t, p + "g_a.3.", False),
                            _conv(t, p + "g_a.4.", 2), stored_gdn(t, p + "g_a.5.", False),
                            _conv(t, p + "g_a.6.", 2))
        g_s = nn.Sequential(_conv(t, p + "g_s.0.", 2, True), stored_gdn(t, p + "g_s.1.", True),
                            _conv(t, p + "g_s.2.", 2, True), stored_gdn(t, p + "g_s.3.", True),
                            _conv(t, p + "g_s.4.", mid, True), stored_gdn(t, p + "g_s.5.", True),
                            _conv(t, p + "g_s.6.", 1))
        h_a = nn.Sequential(_conv(t, p + "h_a.0.", 1), nn.LeakyReLU(inplace=True),
                            _conv(t, p + "h_a.2.", 2), nn.LeakyReLU(inplace=True),
                            _conv(t, p + "h_a.4.", 2))
        log_gain = t[p + "log_gain"].to(device=device, dtype=torch.float32)
        log_hgain = t[p + "log_hgain"].to(device=device, dtype=torch.float32)
        if log_gain.shape[0] != decoder.levels or log_hgain.shape[0] != decoder.levels:
            raise ValueError(f"encoder gains for {log_gain.shape[0]} levels, model has {decoder.levels}")
        return cls(decoder, latent_stride // 2, g_a.to(device).eval(), h_a.to(device).eval(),
                   g_s.to(device).eval(), log_gain, log_hgain)

    # -- ExactParts: the decoder's ------------------------------------------------

    @property
    def context(self) -> bool:
        return self.decoder.context

    @property
    def channels(self) -> tuple[int, int]:
        return self.decoder.channels

    @property
    def levels(self) -> int:
        return self.decoder.levels

    @property
    def device(self) -> torch.device:
        return self.log_gain.device

    def z_tables(self) -> ent.Tables:
        return self.decoder.z_coder

    def y_tables(self) -> ent.Tables:
        return self.decoder.y_coder

    def z_medians(self) -> Tensor:
        return self.decoder.medians

    def hyper_decode(self, z_hat: Tensor, quality: int, y_shape: tuple[int, int]) -> Tensor:
        return self.decoder.hyper_decode(z_hat, quality, y_shape)

    def context_params(self, hs: Tensor, y_hat_anchors: Tensor) -> ent.EntropyParams:
        return self.decoder.context_params(hs, y_hat_anchors)

    def synthesize(self, y_hat: Tensor, quality: int) -> Tensor:
        return self.decoder.synthesize(y_hat, quality)

    # -- EncoderParts ---------------------------------------------------------------

    def check_frame(self, x: Tensor, quality: int) -> int:
        s = self.tensor_stride
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 6 or x.shape[2] % s or x.shape[3] % s:
            raise ValueError(f"input must be (1, 6, h, w) with h, w multiples of {s}, got {tuple(x.shape)}")
        return check_quality(quality, self.levels)

    def analyse(self, x: Tensor, q: int) -> tuple[Tensor, Tensor, Tensor]:
        # IntraCodec.analyse, operation for operation
        y = self.g_a(x.to(torch.float32)) * torch.exp(self.log_gain[q]).view(1, -1, 1, 1)
        hy, wy = int(y.shape[2]), int(y.shape[3])
        z = self.h_a(hyper_pad(y)) * torch.exp(self.log_hgain[q]).view(1, -1, 1, 1)
        med = self.z_medians()
        z_sym = ent.clamp_factorized(self.z_tables(), torch.round(z - med).to(torch.int32)[0])[None]
        z_hat = z_sym.to(torch.float32) + med
        return y, z_sym, self.hyper_decode(z_hat, q, (hy, wy))

    def approximate_synthesis(self, y_hat: Tensor, q: int) -> Tensor:
        return self.g_s(y_hat * torch.exp(self.decoder.log_inv_gain[q]).view(1, -1, 1, 1)).clamp(0.0, 1.0)

    # -- the network's interface (as IntraCodec's) -------------------------------------

    def strings_per_frame(self, packed: bool) -> int:
        return self.decoder.strings_per_frame(packed)

    def estimate(self, x: Tensor, quality: int, mask: Tensor | None = None,
                 analysis: Analysis | None = None) -> Estimate:
        return estimate(self, x, quality, mask, analysis)

    def compress(self, x: Tensor, quality: int, reconstruct: bool = True, mask: Tensor | None = None,
                 packed: bool = False, analysis: Analysis | None = None) -> Compressed:
        return compress(self, x, quality, reconstruct, mask, packed, analysis)

    def decompress(self, strings: tuple[bytes, ...] | list[bytes], shape: tuple[int, int],
                   quality: int, mask: Tensor | None = None, packed: bool = False) -> Tensor:
        return self.decoder.decompress(strings, shape, quality, mask, packed)
