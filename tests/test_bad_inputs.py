"""Bad inputs through the real command line: every row of docs/robustness.md.

Each case runs ``python -m mcodec.cli.main ...`` in a subprocess (cwd: the
repository) and checks the exit code, a distinctive part of the one-line
stderr message, that no traceback is printed and that a failed command leaves
no output (not even a ``.partial`` file) behind. Inputs are made here with the
bundled ffmpeg from lavfi sources (nothing is downloaded), and kept tiny.

Every ``encode`` process imports torch and compressai and loads the shipped
model (several CPU-seconds each, before the input is even opened), so the
slow CLI runs are all started at once in a small thread pool when the module
starts; each test then waits for its own run. Bitstream-header cases fail
before the model is loaded and run inline.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec import ffmpeg as ff
from mcodec.codec import zoo
from mcodec.codec.frame import frame_bytes
from mcodec.codec.video_io import open_video

from .conftest import REPO, lavfi_clip

HEADER_PAYLOAD = 16  # absolute offset of the sequence-header payload
SHA_OFFSET, NAME_LENGTH_OFFSET, NAME_OFFSET = 39, 71, 72  # payload-relative (docs/bitstream.md)


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcodec.cli.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ffmpeg(*args: str) -> None:
    ff.run_ffmpeg(ff.base_args() + ["-y", *args], "making a test input")


def ffmpeg_output(*args: str) -> bytes:
    return subprocess.run(ff.base_args() + list(args), capture_output=True, check=True,
                          timeout=120).stdout


# ----------------------------------------------------------------------------- inputs


def make_inputs(d: Path) -> dict[str, Path]:
    """Every bad (or odd) input of the table, in folder `d`."""
    p = {name: d / fname for name, fname in (
        ("missing", "no_such_file.mp4"), ("empty", "empty.mp4"), ("text", "notes.txt"),
        ("audio", "tone.wav"), ("zero_avi", "zero_frames.avi"), ("zero_y4m", "zero_frames.y4m"),
        ("one", "one_pixel.mkv"), ("odd", "odd_33x17.mkv"), ("raw", "tiny.yuv"),
        ("ten", "ten_bit.mkv"), ("plain", "plain_64x48.mp4"), ("rot", "rotated.mp4"),
        ("vfr", "vfr.mkv"))}
    p["empty"].write_bytes(b"")
    p["text"].write_text("shopping list: eggs, milk\nnot a video at all\n")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", ff.output_url(str(p["audio"])))
    # A video stream with no frames: ffmpeg writes one into AVI (into .mkv it makes a file
    # it cannot read back, into .mp4 a file with no stream at all).
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "0", "-c:v", "ffv1",
           ff.output_url(str(p["zero_avi"])))
    # A YUV4MPEG2 stream header and no frame (what a producer that died early leaves).
    p["zero_y4m"].write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
    lavfi_clip(p["one"], "testsrc=size=1x1:rate=25", 2)  # (testsrc2 refuses 1x1)
    lavfi_clip(p["odd"], "testsrc=size=33x17:rate=25", 3)  # (testsrc2 rounds to even sizes)
    p["raw"].write_bytes(bytes(range(256)) * 4)
    lavfi_clip(p["ten"], "testsrc2=size=64x48:rate=25", 3, pix_fmt="yuv420p10le")
    # Rotation: a plain 64x48 H.264 mp4, remuxed (-c copy) with a 90-degree display
    # matrix. (With -display_rotation on an input that is re-encoded, ffmpeg rotates
    # the pixels itself and writes no matrix; -metadata:s:v rotate=90 writes nothing.)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "3",
           "-pix_fmt", "yuv420p", "-c:v", "libx264", ff.output_url(str(p["plain"])))
    ffmpeg("-display_rotation", "90", "-i", ff.input_url(str(p["plain"])), "-c", "copy",
           ff.output_url(str(p["rot"])))
    # Variable frame rate: 6 frames at 0, 0.04, 0.08, 0.36, 0.48, 0.60 s.
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "6",
           "-vf", "setpts='if(lt(N,3),N,3*N)/(25*TB)'", "-fps_mode", "vfr", "-c:v", "ffv1",
           ff.output_url(str(p["vfr"])))
    return p


# ----------------------------------------------------------------------------- slow CLI runs


@dataclass
class Run:
    """One CLI run: its result and the (otherwise empty) folder its output goes to."""

    done: subprocess.CompletedProcess[str]
    out: Path

    @property
    def outdir(self) -> Path:
        return self.out.parent


def _encode(src: Path, outdir: Path, *extra: str) -> Callable[[], Run]:
    outdir.mkdir()
    out = outdir / "out.bin"
    return lambda: Run(run_cli("-q", "encode", str(src), str(out), *extra), out)


class Runs:
    """The slow CLI runs, started in the background; `get(name)` waits for one."""

    def __init__(self, inputs: dict[str, Path], work: Path) -> None:
        self.inputs = inputs
        self._pool = ThreadPoolExecutor(max_workers=3)
        self._futures: dict[str, Future[Run]] = {}
        # The odd-size stream first: its decode and the header-patching cases need it.
        for name in ("odd", "one", "missing", "empty", "text", "audio", "zero_avi", "zero_y4m",
                     "raw", "ten", "rot", "vfr"):
            extra = ("--size", "100000x100000") if name == "raw" else ()
            self._futures[name] = self._pool.submit(_encode(inputs[name], work / name, *extra))
        decdir = work / "odd_decode"
        decdir.mkdir()

        def decode_odd() -> Run:
            encoded = self._futures["odd"].result()
            out = decdir / "out.y4m"
            return Run(run_cli("-q", "decode", str(encoded.out), str(out)), out)

        self._futures["odd_decode"] = self._pool.submit(decode_odd)

    def get(self, name: str) -> Run:
        return self._futures[name].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)  # a -k run waits for its own only


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    work = tmp_path_factory.mktemp("bad_inputs")
    indir = work / "in"
    indir.mkdir()
    started = Runs(make_inputs(indir), work)
    try:
        yield started
    finally:
        started.close()


# ----------------------------------------------------------------------------- checks


def user_error(run: Run, *fragments: str) -> str:
    """Exit 2, exactly one 'mcodec: error:' line holding `fragments`, no traceback, no output."""
    done = run.done
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcodec: error: "), done.stderr
    assert done.stdout == ""
    assert sorted(p.name for p in run.outdir.iterdir()) == []  # no output, no .partial
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def success(run: Run, *fragments: str) -> list[str]:
    """Exit 0, the summary line holds `fragments`, no traceback; returns the stderr lines."""
    done = run.done
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert run.out.is_file()
    for fragment in fragments:
        assert fragment in done.stdout, done.stdout
    return done.stderr.strip().splitlines()


def info_json(path: Path) -> dict:
    done = run_cli("info", "--json", str(path))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def read_y4m(path: Path) -> tuple[int, int, int]:
    """(width, height, frames) of a 4:2:0 YUV4MPEG2 file, checking its layout exactly."""
    data = path.read_bytes()
    head, _, body = data.partition(b"\n")
    tokens = dict((t[:1], t[1:]) for t in head.split()[1:])
    width, height = int(tokens[b"W"]), int(tokens[b"H"])
    size = len(b"FRAME\n") + frame_bytes(width, height)
    assert len(body) % size == 0
    frames = len(body) // size
    assert all(body[i * size:i * size + 6] == b"FRAME\n" for i in range(frames))
    return width, height, frames


# ----------------------------------------------------------------------------- the table


def test_missing_input_file(runs: Runs) -> None:
    user_error(runs.get("missing"), f"input not found: {runs.inputs['missing']}")


def test_empty_file(runs: Runs) -> None:
    user_error(runs.get("empty"), f"cannot read {runs.inputs['empty']}",
               "Invalid data found when processing input")


def test_text_file_is_not_a_video(runs: Runs) -> None:
    user_error(runs.get("text"), f"cannot read {runs.inputs['text']}",
               "Invalid data found when processing input")


def test_audio_only_input(runs: Runs) -> None:
    line = user_error(runs.get("audio"), str(runs.inputs["audio"]))
    message = line.replace(str(runs.inputs["audio"]), "IN")
    assert message == "mcodec: error: IN: no video stream (it has audio only)", message


def test_zero_frames_video_stream(runs: Runs) -> None:
    line = user_error(runs.get("zero_avi"), str(runs.inputs["zero_avi"]))
    assert line.endswith(f"{runs.inputs['zero_avi']}: no video frames"), line


def test_zero_frames_y4m_header_only(runs: Runs) -> None:
    user_error(runs.get("zero_y4m"), f"{runs.inputs['zero_y4m']}: no frames to encode")


def test_one_by_one_video_encodes(runs: Runs) -> None:
    run = runs.get("one")
    assert success(run, "2 frames 1x1 @ 25 fps") == []
    header = info_json(run.out)["header"]
    assert (header["width"], header["height"], header["frame_count"]) == (1, 1, 2)


def test_odd_size_round_trip(runs: Runs) -> None:
    assert success(runs.get("odd"), "3 frames 33x17 @ 25 fps") == []
    decoded = runs.get("odd_decode")
    assert success(decoded, "3 frames 33x17 decoded, hashes verified") == []
    assert read_y4m(decoded.out) == (33, 17, 3)


def test_huge_raw_size(runs: Runs) -> None:
    user_error(runs.get("raw"), "size 100000x100000 out of range (1..16384 each)")


def test_ten_bit_input_converts_with_one_warning(runs: Runs) -> None:
    lines = success(runs.get("ten"), "3 frames 64x48 @ 25 fps")
    assert lines == [f"mcodec: warning: converting {runs.inputs['ten']} from yuv420p10le "
                     "to yuv420p"]


def test_rotated_mp4_is_coded_in_display_orientation(runs: Runs) -> None:
    src = runs.inputs["rot"]
    # The fixture really carries a display matrix over 64x48 coded frames.
    probe = subprocess.run(ff.base_args(loglevel="info") + ["-i", ff.input_url(str(src))],
                           capture_output=True, text=True, timeout=60).stderr
    assert "rotation of 90.00 degrees" in probe and "64x48" in probe, probe
    # What mcodec's reader hands the encoder: the frame turned 90 degrees
    # counter-clockwise (ffmpeg's autorotation), i.e. as a player shows it.
    coded = ffmpeg_output("-noautorotate", "-i", ff.input_url(str(src)), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1")
    stored = np.frombuffer(coded, np.uint8)[:64 * 48].reshape(48, 64)
    with open_video(str(src), max_frames=1) as reader:
        shown = next(iter(reader)).y
    assert np.array_equal(shown, np.rot90(stored))
    # The CLI codes 48x64 upright frames; the stream has no rotation field.
    run = runs.get("rot")
    assert success(run, "3 frames 48x64 @ 25 fps") == []
    header = info_json(run.out)["header"]
    assert (header["width"], header["height"]) == (48, 64)


def test_variable_frame_rate_keeps_every_frame_at_a_constant_rate(runs: Runs) -> None:
    src = runs.inputs["vfr"]
    log = subprocess.run(ff.base_args(loglevel="info") + ["-i", ff.input_url(str(src)), "-vf",
                                                          "showinfo", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60).stderr
    times = [float(line.split("pts_time:")[1].split()[0])
             for line in log.splitlines() if "pts_time:" in line]
    assert times == pytest.approx([0, 0.04, 0.08, 0.36, 0.48, 0.60])  # really VFR
    run = runs.get("vfr")
    assert success(run, "6 frames 64x48 @ 25 fps") == []  # (no warning about the timing)
    header = info_json(run.out)["header"]
    assert (header["frame_count"], header["fps"]) == (6, "25/1")


# ----------------------------------------------------------------------------- bitstreams


def patch_header(data: bytes, edits: dict[int, bytes], fix_crc: bool = True) -> bytes:
    """`data` with bytes replaced at absolute offsets; the header CRC recomputed."""
    b = bytearray(data)
    for offset, value in edits.items():
        b[offset:offset + len(value)] = value
    if fix_crc:
        (length,) = struct.unpack_from(">I", b, 12)
        struct.pack_into(">I", b, HEADER_PAYLOAD + length,
                         zlib.crc32(bytes(b[8:HEADER_PAYLOAD + length])))
    return bytes(b)


@pytest.fixture(scope="module")
def stream(runs: Runs) -> bytes:
    """A real stream from the shipped model (the 33x17 clip)."""
    data = runs.get("odd").out.read_bytes()
    n = data[HEADER_PAYLOAD + NAME_LENGTH_OFFSET]
    assert data[HEADER_PAYLOAD + NAME_OFFSET:HEADER_PAYLOAD + NAME_OFFSET + n] == \
        zoo.DEFAULT_MODEL_ID.encode()
    return data


def decode_patched(tmp_path: Path, data: bytes) -> Run:
    src = tmp_path / "patched.bin"
    src.write_bytes(data)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "out.y4m"
    return Run(run_cli("-q", "decode", str(src), str(out)), out)


def test_header_claims_100000x100000(stream: bytes, tmp_path: Path) -> None:
    data = patch_header(stream, {HEADER_PAYLOAD: struct.pack(">I", 100000),
                                 HEADER_PAYLOAD + 4: struct.pack(">I", 100000)})
    user_error(decode_patched(tmp_path, data),
               "sequence header: width must be an integer in 1..16384, got 100000 "
               "(at byte offset 16)")


def test_header_claims_16384x4096(stream: bytes, tmp_path: Path) -> None:
    data = patch_header(stream, {HEADER_PAYLOAD: struct.pack(">I", 16384),
                                 HEADER_PAYLOAD + 4: struct.pack(">I", 4096)})
    user_error(decode_patched(tmp_path, data),
               "frame size 16384x4096", "exceeds this decoder's limit of 9437184 pixels",
               "--max-pixels")


def test_stream_from_another_model(stream: bytes, tmp_path: Path) -> None:
    other = b"mcodec-s0".ljust(len(zoo.DEFAULT_MODEL_ID), b"x")  # the name's length is kept
    data = patch_header(stream, {HEADER_PAYLOAD + SHA_OFFSET: bytes(range(32)),
                                 HEADER_PAYLOAD + NAME_OFFSET: other})
    entry = zoo.get_model()
    user_error(decode_patched(tmp_path, data),
               f"stream needs model {other.decode()!r} (sha256 0001020304050607...)",
               "it has ", f"{entry.model_id!r} (sha256 {entry.sha256[:16]}...)")


def test_stream_from_other_weights_with_the_same_name(stream: bytes, tmp_path: Path) -> None:
    data = patch_header(stream, {HEADER_PAYLOAD + SHA_OFFSET: bytes(range(32))})
    entry = zoo.get_model()
    line = user_error(decode_patched(tmp_path, data),
                      f"stream needs model {entry.model_id!r} (sha256 0001020304050607...)")
    assert entry.sha256[:16] in line, line


def test_min_reader_version_6_without_crc_fix_is_a_crc_error(stream: bytes,
                                                            tmp_path: Path) -> None:
    # The envelope (bytes 8..15) is covered by the header CRC.
    (length,) = struct.unpack_from(">I", stream, 12)
    data = patch_header(stream, {10: struct.pack(">H", 6)}, fix_crc=False)
    user_error(decode_patched(tmp_path, data),
               f"file header: CRC mismatch (at byte offset {HEADER_PAYLOAD + length})")


def test_min_reader_version_6_in_a_version_5_stream(stream: bytes, tmp_path: Path) -> None:
    assert struct.unpack_from(">HH", stream, 8) == (5, 5)  # version-5 units need a version-5 reader
    data = patch_header(stream, {10: struct.pack(">H", 6)})
    user_error(decode_patched(tmp_path, data),
               "file header: min_reader_version 6 not in 1..format_version (5) "
               "(at byte offset 10)")


def test_newer_format_version(stream: bytes, tmp_path: Path) -> None:
    data = patch_header(stream, {8: struct.pack(">HH", 6, 6)})
    user_error(decode_patched(tmp_path, data),
               "stream needs reader version 6, this is 5 (at byte offset 10)")
