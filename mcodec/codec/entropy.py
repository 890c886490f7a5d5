"""Deterministic entropy-parameter path and a thin wrapper over CompressAI's rANS coder.

Why this module exists
----------------------
A learned decoder desynchronises when the decoder computes a *different* CDF index
for a latent element than the encoder did (CompressAI #279/#309, DCVC #118/#150):
the hyper-decoder runs in floating point, and a different thread count, BLAS
kernel, CPU or GPU changes the summation order and so the last bits of its
output. CompressAI's ``GaussianConditional.build_indexes`` then compares those
float scales against its scale table, and an element lying near a table
boundary flips to the neighbouring CDF: every symbol after it decodes wrongly.

mcodec makes that path reproducible in three steps:

1. The hyper-decoder (and the checkerboard context network, whose input is the
   decoded anchor half of ``y_hat``) that produce the entropy parameters run
   in float64 (`IntraCodec.hyper_decode`, `context_params`). Its input, the quantized hyper-latent
   ``z_hat``, is an integer tensor plus per-channel medians read from the
   weights, so it is bit-identical on both sides. Float64 summation-order
   noise is ~1e-15 relative, against grid steps of 1/64 and ~0.12 below: the
   probability that an element lands within that noise of a rounding boundary
   is ~1e-13 per element, i.e. never in practice (float32 would be ~1e-5 per
   element, which is several flips per 1080p frame).
2. The parameters are snapped onto fixed integer grids *before* they are used
   (`quantize_entropy_params`): the log-scale is rounded directly to an index
   of the 64-entry log-spaced scale table (no float comparison against the
   table), and the mean is rounded to a multiple of 1/64. Both sides therefore
   work with small integers.
3. The quantized latent is ``y_hat = round(y - mean_q) + mean_q`` with the
   *quantized* mean, so ``y_hat`` is an exact dyadic number (k/64) computed the
   same way on both sides; the synthesis transform sees bit-identical input.

The CDF tables are computed once, at export time, by `update()` from the trained
weights and stored as buffers in the state dict; the decoding side only loads
them (never ``update(force=True)``), so it never recomputes a float CDF either.

The rANS coder itself (``compressai.ans``) is integer-only and exact. It is
used without escape symbols so that its decoder's reads are bounded on hostile
input (see `PRECISION`).
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor

# Scale table: CompressAI's default (64 log-spaced scales 0.11 .. 256); its CDFs
# are built by GaussianConditional.update_scale_table from these values.
SCALE_MIN = 0.11
SCALE_MAX = 256.0
SCALE_LEVELS = 64
# Log-domain step between adjacent table entries (~0.1231 nats).
LOG_SCALE_STEP = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_LEVELS - 1)
# Means are snapped to multiples of 1/MEAN_GRID (a power of two: exact in float).
MEAN_GRID = 64


def scale_table() -> Tensor:
    """(SCALE_LEVELS,) float64 scale table, exactly ``exp(log(min) + i * step)``."""
    i = torch.arange(SCALE_LEVELS, dtype=torch.float64)
    return torch.exp(math.log(SCALE_MIN) + i * LOG_SCALE_STEP)


@dataclass(frozen=True)
class EntropyParams:
    """Grid-quantized Gaussian parameters of a latent.

    Attributes:
        means: (B, C, H, W) float32, multiples of 1/MEAN_GRID.
        indexes: (B, C, H, W) int32 in [0, SCALE_LEVELS), index into `scale_table()`.
    """

    means: Tensor
    indexes: Tensor

    @property
    def scales(self) -> Tensor:
        """(B, C, H, W) float32 scales of the table entries (for rate estimates)."""
        return scale_table().to(torch.float32)[self.indexes.long()]


def quantize_entropy_params(means: Tensor, log_scales: Tensor) -> EntropyParams:
    """Snap float64 hyper-decoder outputs onto the integer grids.

    Args:
        means: (B, C, H, W) predicted means (latent units), ideally float64.
        log_scales: (B, C, H, W) predicted natural-log scales, ideally float64.

    Returns:
        EntropyParams with means on the 1/64 grid and table indexes
        ``clamp(round((log_scale - log(SCALE_MIN)) / step), 0, 63)``.
    """
    means = means.to(torch.float64)
    log_scales = log_scales.to(torch.float64)
    idx = torch.round((log_scales - math.log(SCALE_MIN)) / LOG_SCALE_STEP)
    idx = idx.clamp_(0, SCALE_LEVELS - 1).to(torch.int32)
    # Means are bounded so that float32 holds k/64 exactly (|k| < 2^24).
    m = torch.round(means.clamp(-1e5, 1e5) * MEAN_GRID) / MEAN_GRID
    return EntropyParams(means=m.to(torch.float32), indexes=idx)


def quantize_latent(y: Tensor, means_q: Tensor) -> tuple[Tensor, Tensor]:
    """Integer symbols and the reconstructed latent for grid-quantized means.

    Args:
        y: (B, C, H, W) float latent (gained domain).
        means_q: same shape, grid-quantized means.

    Returns:
        (symbols int32, y_hat float32) with ``y_hat = symbols + means_q`` exactly.
    """
    symbols = torch.round(y - means_q).to(torch.int32)
    return symbols, symbols.to(torch.float32) + means_q


# CompressAI's rANS tables carry an escape ("bypass") symbol as the last entry
# of every CDF. Its C++ decoder does not bounds-check its input (CompressAI
# issue #300) and on crafted data the bypass loop reads an unbounded, data-
# dependent number of words past the end of the string: a segfault found by
# tests/fuzz_decode.py. mcodec therefore never codes escapes: the escape gets
# zero frequency (its mass goes to the last regular symbol), the encoder clamps
# symbols into each table's range, and the decoder then reads exactly one
# 32-bit word per symbol at most plus two for the state, so a string padded
# with that many zero bytes can never be over-read, whatever its content.
PRECISION = 16  # compressai's entropy_coder_precision


@dataclass(frozen=True, eq=False)
class Tables:
    """Escape-free CDF tables of one coder, as the rANS coder wants them.

    Built once per coder (`tables`, `tables_from_buffers`); every coding function
    here takes either these or the coder module itself (then converted per call).
    """

    cdfs: list[list[int]]
    lengths: list[int]
    offsets: list[int]
    low: Tensor   # (T,) int64 smallest codable symbol per table
    high: Tensor  # (T,) int64 largest codable symbol per table


# The buffers of a CompressAI EntropyBottleneck / GaussianConditional that hold its tables
# (state-dict names), in `tables_from_buffers`' argument order.
TABLE_BUFFERS = ("_quantized_cdf", "_cdf_length", "_offset")


def tables_from_buffers(quantized_cdf: Tensor, cdf_length: Tensor, offset: Tensor) -> Tables:
    """`Tables` from a coder's stored buffers: (T, L) int32 CDFs (precision 16, escape last),
    (T,) lengths and (T,) offsets. The escape symbol gets zero frequency (see PRECISION).

    Raises:
        RuntimeError: no tables (update() was never called), or a table too short.
    """
    if quantized_cdf.numel() == 0:
        raise RuntimeError("entropy coder has no CDF tables: call update() at export time")
    cdfs = quantized_cdf.tolist()
    lengths = cdf_length.reshape(-1).int().tolist()
    offsets = offset.reshape(-1).int().tolist()
    if len(lengths) != len(cdfs) or len(offsets) != len(cdfs):
        raise RuntimeError("entropy coder tables: CDF, length and offset counts differ")
    for cdf, n in zip(cdfs, lengths):
        # n - 2 regular symbols; with one, its frequency would be 2**16, which
        # CompressAI stores in 16 bits as 0 (its encoder then divides by zero).
        if n < 4 or n > len(cdf):
            raise RuntimeError("CDF table too short for escape-free coding (needs 2 codable symbols)")
        cdf[n - 2] = 1 << PRECISION  # escape symbol (index n-2) gets zero frequency
    off = torch.tensor(offsets, dtype=torch.int64)
    return Tables(cdfs, lengths, offsets, low=off,
                  high=off + torch.tensor(lengths, dtype=torch.int64) - 3)


def tables(coder: torch.nn.Module | Tables) -> Tables:
    """The stored CDF tables of an EntropyBottleneck/GaussianConditional (or `coder` itself
    when it already is `Tables`), escape removed."""
    if isinstance(coder, Tables):
        return coder
    return tables_from_buffers(*(getattr(coder, b) for b in TABLE_BUFFERS))


@functools.cache
def _ans():
    """CompressAI's compiled rANS coder (`compressai.ans`), loaded without its package.

    `import compressai.ans` would first run `compressai/__init__`, which imports the
    whole library (its datasets pull in torch_geometric and torch._dynamo: ~4 s on
    this CPU), where a decoder needs only this extension. It is loaded from the
    installed package's folder under its own name, so Python registers it as
    `compressai.ans` and a later `import compressai` uses this same module; where
    the file cannot be found, the ordinary import is the fallback.
    """
    spec = importlib.util.find_spec("compressai")  # locates, does not run, the package
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "ans" + suffix)
            if os.path.isfile(path):
                ext = importlib.util.spec_from_file_location("compressai.ans", path)
                if ext is None or ext.loader is None:
                    continue
                module = importlib.util.module_from_spec(ext)
                ext.loader.exec_module(module)
                return module
    from compressai import ans

    return ans


def clamp_symbols(coder: torch.nn.Module | Tables, symbols: Tensor, indexes: Tensor) -> Tensor:
    """Clamp integer symbols into the range their table codes without escapes.

    Args:
        coder: an EntropyBottleneck or GaussianConditional after update().
        symbols: integer tensor (any shape).
        indexes: table index per symbol, same shape (int).

    Returns:
        int32 tensor of the same shape. Values outside the table (beyond
        ~6 sigma for the Gaussian tables) are rare; clamping them costs a
        little distortion there and keeps the decoder's reads bounded.
    """
    t = tables(coder)
    idx = indexes.long().cpu()
    lo, hi = t.low[idx], t.high[idx]
    out = torch.maximum(torch.minimum(symbols.long().cpu(), hi), lo)
    return out.to(torch.int32).to(symbols.device)


def quantize_to_tables(gaussian: torch.nn.Module | Tables, y: Tensor, params: EntropyParams) -> tuple[Tensor, Tensor]:
    """`quantize_latent` followed by `clamp_symbols`: what the encoder actually codes.

    Returns:
        (symbols int32, y_hat float32) with ``y_hat = symbols + params.means`` exactly.
    """
    symbols, _ = quantize_latent(y, params.means)
    if not isinstance(gaussian, Tables) and gaussian._quantized_cdf.numel() == 0:
        # Rate estimation during training (eval-mode forward) has no tables yet;
        # nothing is entropy-coded then, so nothing needs clamping.
        return symbols, symbols.to(torch.float32) + params.means
    symbols = clamp_symbols(gaussian, symbols, params.indexes)
    return symbols, symbols.to(torch.float32) + params.means


# CompressAI's encoder sizes its output buffer by the symbol count and can write
# n/2 + 2 words: fewer than this many symbols may overrun it (a crash). Shorter
# inputs are padded, identically on both sides, with the lowest symbol of the
# last symbol's table; no mcodec stream codes so few symbols (every string holds
# a latent's channels), so this never changes a real stream.
_MIN_SYMBOLS = 3


def _checked_indexes(t: Tables, indexes: Tensor) -> Tensor:
    """Flat int64 table indexes, refused (ValueError) unless every one names a table."""
    idx = indexes.reshape(-1).long().cpu()
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= len(t.cdfs)):
        raise ValueError(f"table index outside 0..{len(t.cdfs) - 1}")
    return idx


def _padded(t: Tables, sym: Tensor, idx: Tensor, total: int | None = None) -> tuple[Tensor, Tensor]:
    """Pad a string's last symbols up to _MIN_SYMBOLS in all (`total`: the string's count
    when these are its last group, default this group alone)."""
    pad = _MIN_SYMBOLS - (int(idx.numel()) if total is None else total)
    last = idx[-1:].expand(pad)
    return torch.cat([sym, t.low[last]]), torch.cat([idx, last])


def _checked_symbols(t: Tables, symbols: Tensor, indexes: Tensor) -> tuple[Tensor, Tensor]:
    """Flat int64 (symbols, table indexes), refused (ValueError) unless they pair up and
    every symbol lies in its table's escape-free range."""
    sym = symbols.reshape(-1).long().cpu()
    idx = _checked_indexes(t, indexes)
    if sym.numel() != idx.numel():
        raise ValueError(f"{sym.numel()} symbols for {idx.numel()} table indexes")
    if bool(((sym < t.low[idx]) | (sym > t.high[idx])).any()):
        raise ValueError("symbol outside its table's range: clamp with clamp_symbols() first")
    return sym, idx


def _rans_encode(t: Tables, symbols: Tensor, indexes: Tensor) -> bytes:
    sym, idx = _checked_symbols(t, symbols, indexes)
    if idx.numel() == 0:
        return b""
    if idx.numel() < _MIN_SYMBOLS:
        sym, idx = _padded(t, sym, idx)
    return _ans().RansEncoder().encode_with_indexes(sym.int().tolist(), idx.int().tolist(),
                                             t.cdfs, t.lengths, t.offsets)


def _rans_decode(t: Tables, string: bytes, indexes: Tensor) -> Tensor:
    idx = _checked_indexes(t, indexes)
    n = int(idx.numel())
    if n == 0:
        return torch.zeros(indexes.shape, dtype=torch.int32)
    if n < _MIN_SYMBOLS:
        idx = _padded(t, torch.zeros(n, dtype=torch.int64), idx)[1]
    # The escape-free decoder reads at most 2 + n 32-bit words (see PRECISION's
    # comment); zero padding keeps every read inside this buffer.
    padded = bytes(string) + bytes(4 * (idx.numel() + 2))
    out = _ans().RansDecoder().decode_with_indexes(padded, idx.int().tolist(), t.cdfs, t.lengths, t.offsets)
    return torch.tensor(out[:n], dtype=torch.int32).reshape(indexes.shape)


def encode_gaussian(gaussian: torch.nn.Module | Tables, symbols: Tensor, indexes: Tensor) -> bytes:
    """rANS-encode integer `symbols` with the CDFs of table `indexes` (one image).

    Args:
        gaussian: a ``compressai.entropy_models.GaussianConditional`` after update().
        symbols: (C, H, W) int32, inside each table's range (`clamp_symbols`).
        indexes: (C, H, W) int32 table indexes.
    """
    return _rans_encode(tables(gaussian), symbols, indexes)


def decode_gaussian(gaussian: torch.nn.Module | Tables, string: bytes, indexes: Tensor) -> Tensor:
    """Inverse of `encode_gaussian`: (C, H, W) int32 symbols for table `indexes`.

    Safe on any `string` (bounded reads); garbage in gives garbage symbols,
    which the frame hash then rejects.
    """
    return _rans_decode(tables(gaussian), string, indexes)


def _channel_indexes(shape: tuple[int, ...]) -> Tensor:
    c, h, w = shape
    return torch.arange(c, dtype=torch.int32).view(c, 1, 1).expand(c, h, w)


def clamp_factorized(bottleneck: torch.nn.Module | Tables, symbols: Tensor) -> Tensor:
    """`clamp_symbols` for (C, H, W) symbols of an EntropyBottleneck (one table per channel)."""
    return clamp_symbols(bottleneck, symbols, _channel_indexes(tuple(symbols.shape)))


def encode_factorized(bottleneck: torch.nn.Module | Tables, symbols: Tensor) -> bytes:
    """rANS-encode (C, H, W) int32 symbols (in range: `clamp_factorized`) with per-channel CDFs."""
    return _rans_encode(tables(bottleneck), symbols, _channel_indexes(tuple(symbols.shape)))


def decode_factorized(bottleneck: torch.nn.Module | Tables, string: bytes, shape: tuple[int, int, int]) -> Tensor:
    """Inverse of `encode_factorized`: (C, H, W) int32 symbols (bounded reads on any input)."""
    return _rans_decode(tables(bottleneck), string, _channel_indexes(tuple(shape)))


def factorized_medians(bottleneck: torch.nn.Module) -> Tensor:
    """(C,) float32 medians of an EntropyBottleneck, from its stored quantiles (exact copy)."""
    return bottleneck.quantiles[:, 0, 1].detach().to(torch.float32).clone()


class PackedWriter:
    """Several symbol groups, each with its own coder's tables, in one rANS string.

    One string instead of one per group saves a rANS flush (4 bytes) and a
    segment length per group; the groups are decoded in the order they were
    added (`PackedReader`), so a later group's tables may depend on an
    earlier group's symbols (the hyperprior, then the checkerboard's halves).
    """

    def __init__(self) -> None:
        self._parts: list[tuple[Tables, Tensor, Tensor]] = []

    def add(self, coder: torch.nn.Module | Tables, symbols: Tensor, indexes: Tensor) -> None:
        """Queue `symbols` (in range: `clamp_symbols`) coded with `coder`'s table `indexes`."""
        t = tables(coder)
        sym, idx = _checked_symbols(t, symbols, indexes)
        if idx.numel():
            self._parts.append((t, sym, idx))

    def add_factorized(self, bottleneck: torch.nn.Module | Tables, symbols: Tensor) -> None:
        """Queue (C, H, W) symbols of an EntropyBottleneck (one table per channel)."""
        self.add(bottleneck, symbols, _channel_indexes(tuple(symbols.shape)))

    def finish(self) -> bytes:
        if not self._parts:
            return b""
        total = sum(int(i.numel()) for _, _, i in self._parts)
        if total < _MIN_SYMBOLS:  # see _MIN_SYMBOLS: pad the last group
            t, sym, idx = self._parts[-1]
            self._parts[-1] = (t, *_padded(t, sym, idx, total))
        enc = _ans().BufferedRansEncoder()
        for t, sym, idx in self._parts:
            enc.encode_with_indexes(sym.int().tolist(), idx.int().tolist(), t.cdfs, t.lengths, t.offsets)
        return enc.flush()


class PackedReader:
    """Reads the groups of a `PackedWriter` string in order.

    `total` is the number of symbols the string holds (known to the decoder
    from the frame's shape and mask before anything is decoded): the string is
    zero-padded by what the escape-free decoder can read for that many
    symbols, so reads stay inside the buffer whatever the string holds.
    """

    def __init__(self, string: bytes, total: int) -> None:
        self._left = int(total)
        self._pad = max(0, _MIN_SYMBOLS - self._left)
        self._dec = None
        if self._left:
            self._dec = _ans().RansDecoder()
            self._dec.set_stream(bytes(string) + bytes(4 * (self._left + self._pad + 2)))
        elif string:
            raise ValueError("non-empty packed string for no symbols")

    def read(self, coder: torch.nn.Module | Tables, indexes: Tensor) -> Tensor:
        """The next group: int32 symbols of `indexes`' shape."""
        t = tables(coder)
        idx = _checked_indexes(t, indexes)
        n = int(idx.numel())
        if n == 0:
            return torch.zeros(indexes.shape, dtype=torch.int32)
        if n > self._left or self._dec is None:
            raise ValueError("packed string read past its declared symbol count")
        self._left -= n
        if self._left == 0 and self._pad:   # the writer padded the last group
            idx = _padded(t, torch.zeros_like(idx), idx, _MIN_SYMBOLS - self._pad)[1]
        out = self._dec.decode_stream(idx.int().tolist(), t.cdfs, t.lengths, t.offsets)
        return torch.tensor(out[:n], dtype=torch.int32).reshape(indexes.shape)

    def read_factorized(self, bottleneck: torch.nn.Module | Tables, shape: tuple[int, int, int]) -> Tensor:
        return self.read(bottleneck, _channel_indexes(tuple(shape)))
