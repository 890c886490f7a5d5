"""The quality ladder: what each `--quality` value means (no heavy imports: the CLI's
help text reads it).

A frame can be coded at its own size (scale 1) or at twice its width and height
(scale 2; the decoder downsamples). At 2x every 16x16 latent patch of the
networks covers an 8x8 patch of the source: the shipped networks' 96 latent
channels per 16x16 patch cannot hold fine texture, so at 2x the quality
ceiling rises by several dB, at more rate. Which scale codes a GOP better
depends on the content (on training clips 2x won by 51 % BD-rate on carphone
and lost by 37 % on bikes where their ranges overlap; docs/model.md), so each
`--quality` value offers both when the model has the levels, and the encoder
chooses per GOP (`codec._choose_scale`).

Value q offers scale 1 at model level q and scale 2 at level q - LEVEL_SHIFT_2X:
a 2x frame has 4x the samples, so at equal bits per source pixel its training
lambda (distortion per bit *per coded sample*) must be ~4x lower, i.e. about
two levels lower (the lambdas double per level), for the same trade-off.
"""

from __future__ import annotations

LEVEL_SHIFT_2X = 2


def quality_ladder(levels: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each --quality value (0 = smallest file), its (coding scale, model level)
    candidates: (1, q) when q < levels, then (2, q - LEVEL_SHIFT_2X) when that level exists."""
    out = []
    for q in range(levels + LEVEL_SHIFT_2X):
        cands = []
        if q < levels:
            cands.append((1, q))
        if 0 <= q - LEVEL_SHIFT_2X < levels:
            cands.append((2, q - LEVEL_SHIFT_2X))
        out.append(tuple(cands))
    return tuple(out)
