"""The decoding side of one latent codec: its dataflow, and a decoder that needs no CompressAI.

`IntraCodec` (`mcodec.codec.model`) trains, analyses and encodes; it is a CompressAI
`CompressionModel`, and importing CompressAI costs ~4 s of start-up (its package
imports its datasets, torch_geometric and torch._dynamo). A decoder needs none of
that: the stored CDF tables, the quality gains, and the exact networks. This
module holds

* the dataflow both sides share, written once against `ExactParts` (what a
  network must provide): `coding_params` (checkerboard parameters and y_hat),
  `decompress` (one frame's strings -> reconstruction), `coded_selections`;
* `LatentDecoder`, an `ExactParts` built straight from a bundle's tensors for
  models that ship integer networks (`mcodec.codec.intsynth`): torch and the
  compiled rANS extension only (`mcodec.codec.entropy`).

`IntraCodec` is the other `ExactParts`; both give bit-identical output for the same
bundle (`tests/test_latent_decoder.py`), and streams say nothing about which decoded.

Dataflow of `decompress` (rows x cols latent, M channels, N hyper channels)::

    z string --rANS(z tables)--> z_sym (N, rows/4, cols/4) + medians = z_hat
    z_hat --hyper_decode(q)--> hs (1, 2M, rows, cols)     means, log-scales of y
    hs --grids--> p0 --rANS(y tables)--> anchors (i+j even) of y_hat
    (hs, anchors) --context_params--> p1 --rANS--> non-anchors of y_hat
    y_hat --synthesize(q)--> x_hat (1, 6, 8 rows, 8 cols) on the 8-bit grid k/255

A masked latent position (one 16x16 luma patch) carries no symbol; both sides put
its grid-quantized mean there (`IntraCodec.compress`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mcodec.codec import entropy as ent
from mcodec.codec.intsynth import IntChain, IntSynthesis

# The hyper-analysis strides the latent by this much more (the decoder derives z's shape).
HYPER_STRIDE = 4
# Largest latent side `decompress` accepts: 16384 luma pixels / 8, the finest grid (as trusted decoders
# cap frame sizes, so a corrupted header cannot make us allocate an absurd tensor).
MAX_LATENT_SIDE = 16384 // 8


class ExactParts(Protocol):
    """What the shared dataflow needs of a network; every output is exact (bit-identical
    on every machine and thread count), so encoder and decoder agree."""

    @property
    def context(self) -> bool: ...          # two-pass checkerboard context
    @property
    def channels(self) -> tuple[int, int]: ...  # (N hyper-latent, M latent) channels

    def z_tables(self) -> ent.Tables: ...
    def y_tables(self) -> ent.Tables: ...
    def z_medians(self) -> Tensor: ...      # (1, N, 1, 1) float32

    def hyper_decode(self, z_hat: Tensor, quality: int, y_shape: tuple[int, int]) -> Tensor:
        """(1, 2M, rows, cols) hyper-decoder output (means, log-scales) of decoded `z_hat`."""
        ...

    def context_params(self, hs: Tensor, y_hat_anchors: Tensor) -> ent.EntropyParams:
        """Grid-quantized non-anchor parameters from `hs` and the decoded anchors."""
        ...

    def synthesize(self, y_hat: Tensor, quality: int) -> Tensor:
        """(1, 6, 8 rows, 8 cols) float32 reconstruction on the 8-bit grid."""
        ...


def anchor_mask(rows: int, cols: int) -> Tensor:
    """(rows, cols) bool checkerboard: True at anchors ((i + j) even), coded first."""
    i = torch.arange(rows).view(-1, 1)
    j = torch.arange(cols).view(1, -1)
    return (i + j) % 2 == 0


def check_quality(quality: int, levels: int) -> int:
    """`quality` as an int if it is an integer in 0..levels-1, else ValueError."""
    q = int(quality)
    if not 0 <= q < levels or q != quality:
        raise ValueError(f"quality must be an integer in 0..{levels - 1}, got {quality!r}")
    return q


def check_mask(mask: Tensor | None, rows: int, cols: int, batch: int | None = None) -> Tensor | None:
    """Validate a latent mask and return it as a bool tensor broadcastable to y.

    Args:
        mask: (rows, cols) or, with `batch`, (batch, rows, cols) bool-like; True =
            masked (not coded). None means nothing masked.
        rows, cols: the latent grid.
        batch: expected leading size for a per-image mask (forward), or None.

    Returns:
        None, or a bool tensor of shape (1, 1, rows, cols) / (B, 1, rows, cols)
        (the channel axis broadcasts: a mask covers all channels of a position).
    """
    if mask is None:
        return None
    m = torch.as_tensor(mask)
    if m.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {m.dtype}")
    if m.dim() == 2:
        m = m.unsqueeze(0)
    if m.dim() != 3 or tuple(m.shape[1:]) != (rows, cols) or \
            (batch is not None and m.shape[0] not in (1, batch)) or (batch is None and m.shape[0] != 1):
        raise ValueError(f"mask shape {tuple(torch.as_tensor(mask).shape)} does not match the "
                         f"latent grid ({rows}, {cols})")
    return m.unsqueeze(1)


def coded_selections(context: bool, rows: int, cols: int, mask: Tensor | None) -> list[Tensor]:
    """(rows, cols) bool selections of the positions each y pass carries, in order.

    With the context: (visible anchors, visible non-anchors); without: (visible,).
    Encoder and decoder derive them identically from the shape and the mask.
    """
    visible = torch.ones((rows, cols), dtype=torch.bool) if mask is None else ~mask[0, 0].cpu()
    if not context:
        return [visible]
    a = anchor_mask(rows, cols)
    return [a & visible, ~a & visible]


def strings_per_frame(context: bool, packed: bool) -> int:
    """Strings per coded frame: 1 when packed (format version 4), else (y passes) + z."""
    return 1 if packed else (3 if context else 2)


def decode_pass(y_tables: ent.Tables, string: bytes, indexes: Tensor) -> Tensor:
    """(M, k) int32 symbols of one unpacked y pass with table `indexes` (M, k); a pass
    with no position (k = 0: all masked) must have an empty string (ValueError)."""
    if indexes.numel() == 0:
        if string:
            raise ValueError("non-empty latent string for an all-masked pass")
        return torch.zeros(indexes.shape, dtype=torch.int32)
    return ent.decode_gaussian(y_tables, string, indexes)


def coding_params(parts: ExactParts, hs: Tensor, y: Tensor | None,
                  decode_anchors: Callable[[ent.EntropyParams], Tensor] | None = None,
                  mask: Tensor | None = None) -> tuple[ent.EntropyParams, Tensor]:
    """Final grid-quantized parameters of the whole latent, and y_hat.

    Encoder: pass the latent `y`. Decoder: pass `decode_anchors`, a callable
    taking the anchor parameters and returning the decoded anchor symbols
    (B, M, rows, cols) int32 (non-anchor and masked entries must be 0).
    Returns (params, y_hat) where y_hat's non-anchor entries are still to be
    decoded on the decoder side (the caller adds them).

    `mask` ((1|B, 1, rows, cols) bool, see `check_mask`): masked anchors
    enter the context as their means (symbol 0), identically on both sides.
    """
    m0, ls0 = hs.chunk(2, dim=1)
    p0 = ent.quantize_entropy_params(m0, ls0)
    if y is not None:
        _, y_hat0 = ent.quantize_to_tables(parts.y_tables(), y, p0)
        if mask is not None:
            y_hat0 = torch.where(mask, p0.means, y_hat0)
    else:
        assert decode_anchors is not None
        y_hat0 = decode_anchors(p0).to(torch.float32) + p0.means
    if not parts.context:
        return p0, y_hat0
    a = anchor_mask(hs.shape[2], hs.shape[3]).to(hs.device)
    p1 = parts.context_params(hs, y_hat0 * a)
    means = torch.where(a, p0.means, p1.means)
    idx = torch.where(a, p0.indexes, p1.indexes)
    return ent.EntropyParams(means=means, indexes=idx), y_hat0


def decompress(parts: ExactParts, strings: tuple[bytes, ...] | list[bytes], shape: tuple[int, int],
               quality: int, mask: Tensor | None = None, packed: bool = False) -> Tensor:
    """Decode one frame: (1, 6, 8*rows, 8*cols) float32 tensor of values k/255.

    Args:
        parts: the network (`IntraCodec` or `LatentDecoder`).
        strings: the `strings_per_frame(packed)` strings of `IntraCodec.compress`.
        shape: (rows, cols) of the latent.
        quality: the level it was coded at (the caller checks its range).
        mask: the (rows, cols) bool mask given to `compress` (None: unmasked).
        packed: one string holding every pass (format version 4).

    Raises:
        ValueError: wrong string count, shape outside the limits, bad mask, or a
            string the coder refuses (damage; bounded reads on any input).
    """
    n, m = parts.channels
    if len(strings) != strings_per_frame(parts.context, packed):
        raise ValueError(f"expected {strings_per_frame(parts.context, packed)} strings, got {len(strings)}")
    hy, wy = int(shape[0]), int(shape[1])
    if not (1 <= hy <= MAX_LATENT_SIDE and 1 <= wy <= MAX_LATENT_SIDE):
        raise ValueError(f"bad latent shape {shape}")
    mk = check_mask(mask, hy, wy)
    hz, wz = -(-hy // HYPER_STRIDE), -(-wy // HYPER_STRIDE)
    sels = coded_selections(parts.context, hy, wy, mk)
    z_tables, y_tables = parts.z_tables(), parts.y_tables()
    reader = None
    if packed:  # every count is known from the shape and the mask before decoding
        total = n * hz * wz + m * sum(int(sel.sum()) for sel in sels)
        reader = ent.PackedReader(strings[0], total)
        z_sym = reader.read_factorized(z_tables, (n, hz, wz))
    else:
        z_sym = ent.decode_factorized(z_tables, strings[-1], (n, hz, wz))
    z_hat = z_sym[None].to(torch.float32) + parts.z_medians()
    hs = parts.hyper_decode(z_hat, quality, (hy, wy))

    def decode_part(k: int, p: ent.EntropyParams) -> Tensor:
        """(1, M, rows, cols) int32 symbols of y pass k; 0 wherever it carries none."""
        sym = torch.zeros((1, m, hy, wy), dtype=torch.int32)
        idx = p.indexes[0][:, sels[k]]
        sym[0][:, sels[k]] = (reader.read(y_tables, idx) if reader is not None
                              else decode_pass(y_tables, strings[k], idx))
        return sym

    p, y_hat = coding_params(parts, hs, None, lambda p0: decode_part(0, p0), mask=mk)
    if parts.context:  # second pass: the non-anchors with context parameters
        a = anchor_mask(hy, wy)
        y_hat = torch.where(a, y_hat, decode_part(1, p).to(torch.float32) + p.means)
    return parts.synthesize(y_hat, quality)


# ----------------------------------------------------------------------------- a decoder from tensors


class StoredGDN(nn.Module):
    """Inference-only GDN built from a stored CompressAI layer, computed exactly as
    CompressAI's `GDN` computes it (same reparametrisation, same operations in the same
    order), so its output is bit-identical to that layer's in float32 and float64:
    out = x * sqrt(beta + gamma @ x^2) (`inverse`, the synthesis') or
    x * rsqrt(beta + gamma @ x^2) (the analysis').

    Buffers (CompressAI's state-dict names, flattened): beta (C,), gamma (C, C), and the
    non-negative reparametrisation's lower bounds and pedestals.
    """

    def __init__(self, beta: Tensor, gamma: Tensor, beta_bound: Tensor, beta_pedestal: Tensor,
                 gamma_bound: Tensor, gamma_pedestal: Tensor, inverse: bool = True) -> None:
        super().__init__()
        self.inverse = inverse
        for name, value in (("beta", beta), ("gamma", gamma), ("beta_bound", beta_bound),
                            ("beta_pedestal", beta_pedestal), ("gamma_bound", gamma_bound),
                            ("gamma_pedestal", gamma_pedestal)):
            self.register_buffer(name, value.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = torch.max(self.beta, self.beta_bound) ** 2 - self.beta_pedestal
        gamma = (torch.max(self.gamma, self.gamma_bound) ** 2 - self.gamma_pedestal).reshape(c, c, 1, 1)
        norm = F.conv2d(x ** 2, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


InverseGDN64 = StoredGDN   # the name the synthesis head's float64 layer had


def stored_gdn(tensors: dict[str, Tensor], prefix: str, inverse: bool = True) -> StoredGDN:
    """The GDN stored under `prefix` (CompressAI's state-dict names)."""
    def t(name: str) -> Tensor:
        return tensors[prefix + name]

    return StoredGDN(t("beta"), t("gamma"), t("beta_reparam.lower_bound.bound"), t("beta_reparam.pedestal"),
                     t("gamma_reparam.lower_bound.bound"), t("gamma_reparam.pedestal"), inverse)


def _deconv(tensors: dict[str, Tensor], prefix: str) -> nn.ConvTranspose2d:
    """The 5x5 stride-2 transposed convolution (CompressAI's `deconv`) stored under `prefix`."""
    w = tensors[prefix + "weight"]
    layer = nn.ConvTranspose2d(w.shape[0], w.shape[1], kernel_size=5, stride=2, padding=2,
                               output_padding=1)
    layer.load_state_dict({"weight": w, "bias": tensors[prefix + "bias"]})
    return layer


@dataclass(frozen=True, eq=False)
class LatentDecoder:
    """The decoder of one network of a bundle with integer networks (no CompressAI).

    Holds what `decompress` needs and nothing else, tables converted once at load.

    Attributes:
        context: the bundle's checkerboard context flag.
        channels: (N, M).
        levels: number of quality levels.
        z_coder, y_coder: the factorized and Gaussian CDF tables (escape-free).
        medians: (1, N, 1, 1) float32 hyper-latent medians.
        log_hinv_gain, log_inv_gain: (levels, N) / (levels, M) float32 decoder gains (log).
        hyper: integer hyper-decoder (float64 head: h_s's first deconvolution + LeakyReLU).
        context_nets: (context convolution, parameter network), integer; None without context.
        synthesis: integer synthesis (float64 head: g_s's first deconvolution + inverse GDN).
    """

    context: bool
    channels: tuple[int, int]
    levels: int
    z_coder: ent.Tables
    y_coder: ent.Tables
    medians: Tensor
    log_hinv_gain: Tensor
    log_inv_gain: Tensor
    hyper: IntChain
    context_nets: tuple[IntChain, IntChain] | None
    synthesis: IntSynthesis

    # HYPER_HEAD layers of h_s (deconvolution, LeakyReLU) stay float64 (zoo.HYPER_HEAD).
    LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default, which h_s uses

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], prefix: str, context: bool, levels: int,
                     int_prefixes: tuple[str, str, str, str], device: str | torch.device = "cpu") -> LatentDecoder:
        """Build from a bundle's tensors under `prefix` ("intra." / "inter.").

        `int_prefixes`: the tensor prefixes of the synthesis, hyper-decoder, context and
        parameter integer networks (`zoo.INT_PREFIX`, ...). Raises KeyError / ValueError
        on missing or inconsistent tensors.
        """
        p_syn, p_hyp, p_ctx, p_par = (prefix + s for s in int_prefixes)
        t = tensors
        hyper_head = nn.Sequential(_deconv(t, prefix + "h_s.0."), nn.LeakyReLU(cls.LEAKY_SLOPE, inplace=True))
        synth_head = nn.Sequential(_deconv(t, prefix + "g_s.0."), stored_gdn(t, prefix + "g_s.1."))
        ctx = None
        if context:
            ctx = (IntChain.from_tensors(None, t, p_ctx, device), IntChain.from_tensors(None, t, p_par, device))
        quantiles = t[prefix + "entropy_bottleneck.quantiles"]
        log_hinv = t[prefix + "log_hinv_gain"].to(device=device, dtype=torch.float32)
        log_inv = t[prefix + "log_inv_gain"].to(device=device, dtype=torch.float32)
        if log_hinv.shape[0] != levels or log_inv.shape[0] != levels:
            raise ValueError(f"gain tables for {log_inv.shape[0]} levels, model has {levels}")
        return cls(
            context=context, channels=(int(log_hinv.shape[1]), int(log_inv.shape[1])), levels=levels,
            z_coder=ent.tables_from_buffers(*(t[prefix + "entropy_bottleneck." + b] for b in ent.TABLE_BUFFERS)),
            y_coder=ent.tables_from_buffers(*(t[prefix + "gaussian_conditional." + b] for b in ent.TABLE_BUFFERS)),
            medians=quantiles[:, 0, 1].to(device=device, dtype=torch.float32).view(1, -1, 1, 1).clone(),
            log_hinv_gain=log_hinv, log_inv_gain=log_inv,
            hyper=IntChain.from_tensors(hyper_head.to(device), t, p_hyp, device),
            context_nets=ctx,
            synthesis=IntSynthesis.from_tensors(synth_head.to(device), t, p_syn, device),
        )

    # -- ExactParts ---------------------------------------------------------------

    def z_tables(self) -> ent.Tables:
        return self.z_coder

    def y_tables(self) -> ent.Tables:
        return self.y_coder

    def z_medians(self) -> Tensor:
        return self.medians

    def hyper_decode(self, z_hat: Tensor, quality: int, y_shape: tuple[int, int]) -> Tensor:
        zs = z_hat.to(torch.float64) * torch.exp(self.log_hinv_gain[quality].to(torch.float64)).view(1, -1, 1, 1)
        return self.hyper(zs)[:, :, :y_shape[0], :y_shape[1]]

    def context_params(self, hs: Tensor, y_hat_anchors: Tensor) -> ent.EntropyParams:
        assert self.context_nets is not None
        ctx_net, ep_net = self.context_nets
        hs = hs.to(torch.float32)
        out = hs + ep_net(torch.cat([hs, ctx_net(y_hat_anchors.to(torch.float32))], dim=1))
        means, log_scales = out.chunk(2, dim=1)
        return ent.quantize_entropy_params(means, log_scales)

    def synthesize(self, y_hat: Tensor, quality: int) -> Tensor:
        gain = torch.exp(self.log_inv_gain[quality].to(torch.float64)).view(1, -1, 1, 1)
        return self.synthesis(y_hat.to(torch.float64) * gain)

    # -- the decoder's interface (as IntraCodec's) ---------------------------------

    def strings_per_frame(self, packed: bool) -> int:
        return strings_per_frame(self.context, packed)

    @torch.no_grad()
    def decompress(self, strings: tuple[bytes, ...] | list[bytes], shape: tuple[int, int],
                   quality: int, mask: Tensor | None = None, packed: bool = False) -> Tensor:
        """See the module-level `decompress`; `quality` must be in 0..levels-1 (ValueError)."""
        return decompress(self, strings, shape, check_quality(quality, self.levels), mask, packed)
