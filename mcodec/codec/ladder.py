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

Value q offers scale 1 at model level q and scale 2 at level q - LEVEL_SHIFT_2X.
Measured on training clips (16 frames; docs/model.md "Coding at 2x"): 2x level L
costs about what 1x level L + 4 does, but pairing at that equal-rate shift let
the 2x level at a GOP's crossover cost *less* than the 1x level just below it
(carphone: 1x L3 4,358 bytes, 2x L0 4,341), so rate was not monotonic in the
quality value, and the key-frame test chose 2x where the GOP lost by it
(bikes). With a shift of 2 the first 2x level of a GOP costs about as much as
1x three levels up: rate stays monotonic with margin, 2x is used where it pays
most (the top of the range), at some loss in the middle on detailed content.

The *upper layer* (the ladder's scale 2) is coding at 2x only for models without
fine networks. A model with fine networks (`ModelConfig.latent_stride` 8, also one
latent per 8x8 patch of the source) codes it with them at native size instead
(`codec.coding_layer`): the same latent density as 2x at about the compute of 1x.
"""

from __future__ import annotations

LEVEL_SHIFT_2X = 2


def quality_ladder(levels: int, shift: int = LEVEL_SHIFT_2X) -> tuple[tuple[tuple[int, int], ...], ...]:
    """For each --quality value (0 = smallest file), its (coding scale, model level)
    candidates: (1, q) when q < levels, then (2, q - shift) when that level exists."""
    out = []
    for q in range(levels + shift):
        cands = []
        if q < levels:
            cands.append((1, q))
        if 0 <= q - shift < levels:
            cands.append((2, q - shift))
        out.append(tuple(cands))
    return tuple(out)
