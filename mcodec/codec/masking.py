"""Patch masks: the MAE-style mask generator and the coded mask map (both sides).

A mask is a bool array over the patch grid, True = masked: the patch is not coded
and the decoder takes the (motion-compensated) prediction there, or lets the
network fill it in. Patches are `patch` x `patch` luma pixels and the matching
patch/2 x patch/2 chroma pixels of YUV 4:2:0 frames; the grid is
(ceil(H / patch), ceil(W / patch)) and edge patches may be partial.

* `random_mask` / `tube_mask`: MAE-style masks for training (exactly
  round(ratio * N) patches, uniformly at random; VideoMAE's tube variant repeats
  one mask over T frames).
* `encode_mask` / `decode_mask`: the mask map coded with the adaptive binary
  range coder (`mcodec.codec.rangecoder`), context = (left bit, top bit).

Which patches a predicted frame masks is the encoder's decision, in
`mcodec.codec.mask_decision`.
"""

from __future__ import annotations

import numpy as np

from mcodec.codec.rangecoder import RangeDecoder, RangeEncoder, models

_MAX_PATCHES = 1 << 24          # sanity bound for decode_mask's shape


def _n_masked(n: int, ratio: float) -> int:
    """round(ratio * n) with halves rounded up (Python's round() would round to even)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio {ratio} outside [0, 1]")
    return min(n, int(np.floor(ratio * n + 0.5)))


def random_mask(shape_in_patches: tuple[int, int], ratio: float,
                generator: np.random.Generator, batch: int | None = None) -> np.ndarray:
    """MAE-style random mask: exactly round(ratio * N) of N = Hp * Wp patches masked.

    Args:
        shape_in_patches: (Hp, Wp).
        ratio: fraction masked, in [0, 1].
        generator: numpy Generator (the only source of randomness).
        batch: when given, return `batch` independent masks.

    Returns:
        bool (Hp, Wp), or (batch, Hp, Wp) when `batch` is given; True = masked.
    """
    hp, wp = (int(s) for s in shape_in_patches)
    if hp < 0 or wp < 0:
        raise ValueError(f"shape_in_patches {shape_in_patches} must be non-negative")
    n = hp * wp
    k = _n_masked(n, ratio)
    b = 1 if batch is None else int(batch)
    # As in MAE: rank uniform noise, mask the k lowest (a uniform random k-subset).
    noise = generator.random((b, n))                                     # (B, N)
    ids = np.argsort(noise, axis=1)[:, :k]                               # (B, k)
    mask = np.zeros((b, n), bool)
    np.put_along_axis(mask, ids, True, axis=1)
    mask = mask.reshape(b, hp, wp)                                       # (B, Hp, Wp)
    return mask[0] if batch is None else mask


def tube_mask(shape_in_patches: tuple[int, int], frames: int, ratio: float,
              generator: np.random.Generator, batch: int | None = None) -> np.ndarray:
    """VideoMAE tube mask: one random mask repeated over `frames` frames.

    Returns bool (T, Hp, Wp), or (batch, T, Hp, Wp) when `batch` is given.
    """
    if frames < 1:
        raise ValueError(f"frames {frames} must be >= 1")
    m = random_mask(shape_in_patches, ratio, generator, batch=1 if batch is None else batch)
    tubes = np.repeat(m[:, None], frames, axis=1)                        # (B, T, Hp, Wp)
    return tubes[0] if batch is None else tubes


def encode_mask(mask: np.ndarray) -> bytes:
    """Entropy-code a bool (Hp, Wp) mask map (its shape is not included).

    Raster order, one adaptive context per (left, top) neighbour pair (outside the
    picture counts as False). All-False maps cost 0 bytes, all-True ones 1.
    """
    enc = RangeEncoder()
    write_mask(enc, mask)
    return enc.finish()


def write_mask(enc: RangeEncoder, mask: np.ndarray) -> None:
    """`encode_mask` into an open range coder (format version 4: one side-information stream)."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (Hp, Wp), got shape {m.shape}")
    bits = m.astype(bool).tolist()
    coder = MaskCoder(m.shape)
    for r, row in enumerate(bits):
        for c, bit in enumerate(row):
            coder.write(enc, r, c, bit)


class MaskCoder:
    """The mask map's syntax one flag at a time (context: the left and top flags): what
    `write_mask` writes in raster order, and what the encoder's decision costs a patch's
    flag with (a `BitCounter`) before committing it."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.bits = [[False] * shape[1] for _ in range(shape[0])]
        self.ctx = models(4)

    def write(self, enc, r: int, c: int, masked: bool) -> None:
        row = self.bits[r]
        k = (c > 0 and row[c - 1]) + 2 * (r > 0 and self.bits[r - 1][c])
        row[c] = bool(masked)
        enc.encode_bit(row[c], self.ctx[k])


def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Inverse of `encode_mask` -> bool (Hp, Wp).

    Raises BitstreamError when `data` is not a valid stream; work is bounded by
    Hp * Wp binary decisions whatever the bytes.
    """
    dec = RangeDecoder(data)
    mask = read_mask(dec, shape)
    dec.finish()
    return mask


def read_mask(dec: RangeDecoder, shape: tuple[int, int]) -> np.ndarray:
    """`decode_mask` from an open range decoder."""
    hp, wp = (int(s) for s in shape)
    if hp < 0 or wp < 0 or hp * wp > _MAX_PATCHES:
        raise ValueError(f"mask shape {shape} out of range")
    ctx = models(4)
    bits = [[False] * wp for _ in range(hp)]
    for r in range(hp):
        row, up = bits[r], bits[r - 1] if r else None
        for c in range(wp):
            k = (c > 0 and row[c - 1]) + 2 * (up is not None and up[c])
            row[c] = bool(dec.decode_bit(ctx[k]))
    return np.array(bits, dtype=bool).reshape(hp, wp)
