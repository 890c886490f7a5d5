"""--preset fast|medium|slow: the tunings they select and streams they make."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mcodec.codec import bitstream as bs
from mcodec.codec import codec
from mcodec.codec.options import PRESETS, EncodeOptions, EncoderTuning, preset_tuning
from mcodec.errors import McodecError
from tests.test_cli import run_cli


def test_medium_is_the_shipped_tuning_and_the_others_differ() -> None:
    assert PRESETS == ("fast", "medium", "slow")
    assert preset_tuning("medium") == EncoderTuning()
    assert preset_tuning("fast").coding_scales == (1,)
    assert preset_tuning("fast").search_range < EncoderTuning().search_range < preset_tuning("slow").search_range
    assert len({preset_tuning(p).key() for p in PRESETS}) == 3  # the bench cache keeps them apart
    with pytest.raises(McodecError, match="--preset"):
        preset_tuning("ultrafast")


def test_fast_never_codes_at_2x_and_decodes_exactly(nets, cars_cut, tmp_path: Path) -> None:
    top = len(EncoderTuning().quality_ladder(nets.levels)) - 1
    counts = {}
    for preset in ("fast", "medium"):
        out = tmp_path / f"{preset}.bin"
        codec.encode(str(cars_cut), str(out), networks=nets,
                     options=EncodeOptions(quality=top, gop=4, tuning=preset_tuning(preset)))
        frames = bs.read_bitstream(str(out)).frames
        counts[preset] = sum(bool(f.flags & bs.FRAME_FLAG_SCALE2) for f in frames)
        dec = codec.decode(str(out), str(tmp_path / f"{preset}.y4m"), networks=nets)  # hash-checked
        assert dec.frames == 6
    assert counts["fast"] == 0
    assert counts["medium"] > 0  # the top quality does use 2x with the medium tuning
    assert dataclasses.replace(preset_tuning("fast"), coding_scales=(1, 2), search_range=16) == EncoderTuning()


def test_cli_rejects_an_unknown_preset(tmp_path: Path) -> None:
    done = run_cli("encode", str(tmp_path / "in.y4m"), str(tmp_path / "o.bin"), "--preset", "turbo")
    assert done.returncode == 2
    assert "--preset" in done.stderr
