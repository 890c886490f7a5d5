"""Video input/output: real ffmpeg, exact round trips, clear errors."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec import ffmpeg as ff
from mcodec.codec.frame import Frame, frame_bytes
from mcodec.codec.video_io import (VideoReader, open_video, open_writer, parse_fps, parse_size, source_pix_fmt_from_log)
from mcodec.errors import FFmpegNotFoundError, VideoIOError

from .conftest import lavfi_clip, synthetic_frames, write_clip

# name -> (width, height, frames, fps) from ../shared/data/README.md
DEV_CLIPS = {
    "calendar_720x576.mkv": (720, 576, 41, 25),
    "city_704x576.mkv": (704, 576, 34, 25),
    "foliage_720x480.mkv": (720, 480, 49, 25),
    "walk_720x480.mkv": (720, 480, 47, 25),
    "cars_320x240.mkv": (320, 240, 30, 30),
    "ciscovt2people_320x192.mkv": (320, 192, 9, 12),
}


def read_all(path: str, **kw) -> tuple[list[Frame], object]:
    with open_video(path, **kw) as reader:
        return list(reader), reader.info


def same(a: list[Frame], b: list[Frame]) -> bool:
    return len(a) == len(b) and all(x.equals(y) for x, y in zip(a, b))


@pytest.mark.parametrize("name", sorted(DEV_CLIPS))
def test_dev_clip_y4m_round_trip(clips_dir: Path, tmp_path: Path, name: str) -> None:
    width, height, count, fps = DEV_CLIPS[name]
    frames, info = read_all(str(clips_dir / name))
    assert (info.width, info.height, info.fps) == (width, height, Fraction(fps))
    assert info.source_pix_fmt == "yuv420p"
    assert len(frames) == count
    out = write_clip(tmp_path / "rt.y4m", frames, info.fps)
    back, info2 = read_all(str(out))
    assert info2.fps == info.fps
    assert same(frames, back)


def test_odd_size_round_trips_every_writer(tmp_path: Path) -> None:
    frames = synthetic_frames(33, 17, 5)
    for ext in ("y4m", "mkv", "yuv"):
        out = write_clip(tmp_path / f"odd.{ext}", frames, Fraction(30000, 1001))
        kw = {"size": "33x17", "fps": "30000/1001"} if ext == "yuv" else {}
        back, info = read_all(str(out), **kw)
        assert (info.width, info.height) == (33, 17), ext
        assert info.fps == Fraction(30000, 1001), ext
        assert same(frames, back), ext


def test_raw_yuv_needs_size_and_reads_exactly(tmp_path: Path) -> None:
    frames = synthetic_frames(64, 48, 4)
    raw = tmp_path / "clip.yuv"
    raw.write_bytes(b"".join(f.tobytes() for f in frames))
    assert raw.stat().st_size == 4 * frame_bytes(64, 48)
    back, info = read_all(str(raw), size=(64, 48), fps="12")
    assert same(frames, back) and info.fps == 12
    with pytest.raises(VideoIOError, match="size"):
        open_video(str(raw))


def test_raw_other_pix_fmt_is_converted_with_warning(tmp_path: Path) -> None:
    # A yuv444p raw file: ffmpeg converts to 4:2:0, we warn once.
    w, h = 32, 16
    y = np.full((h, w), 100, np.uint8)
    raw = tmp_path / "c444.yuv"
    raw.write_bytes((y.tobytes() + np.full((h, w), 90, np.uint8).tobytes()
                     + np.full((h, w), 160, np.uint8).tobytes()) * 2)
    warnings: list[str] = []
    back, _ = read_all(str(raw), size=(w, h), pix_fmt="yuv444p", warn=warnings.append)
    assert len(back) == 2 and int(back[0].u[0, 0]) == 90 and int(back[0].v[0, 0]) == 160
    assert len(warnings) == 1 and "yuv444p" in warnings[0]


def test_ten_bit_input_is_converted_with_warning(tmp_path: Path) -> None:
    clip = lavfi_clip(tmp_path / "ten.mkv", "testsrc2=size=64x48:rate=25", 3,
                      pix_fmt="yuv420p10le")
    warnings: list[str] = []
    frames, info = read_all(str(clip), warn=warnings.append)
    assert len(frames) == 3 and frames[0].y.dtype == np.uint8
    assert info.source_pix_fmt == "yuv420p10le"
    assert len(warnings) == 1 and "yuv420p10le" in warnings[0]


def test_mp4_input_and_lossless_mp4_output(tmp_path: Path) -> None:
    frames = synthetic_frames(64, 48, 6)
    out = tmp_path / "x.mp4"
    with open_writer(str(out), 64, 48, Fraction(25), mp4_lossless=True) as w:
        for f in frames:
            w.write(f)
    back, _ = read_all(str(out))
    assert same(frames, back)


def test_max_frames_stops_early(clips_dir: Path) -> None:
    frames, _ = read_all(str(clips_dir / "cars_320x240.mkv"), max_frames=3)
    assert len(frames) == 3


def test_stdin_input(tmp_path: Path) -> None:
    frames = synthetic_frames(40, 24, 3)
    clip = write_clip(tmp_path / "in.y4m", frames)
    with open(clip, "rb") as f, VideoReader("-", stdin=f) as reader:
        back = list(reader)
    assert same(frames, back)


def test_stdout_output_is_y4m() -> None:
    frames = synthetic_frames(40, 24, 2)
    buf = io.BytesIO()
    from mcodec.codec.video_io import VideoWriter

    w = VideoWriter("-", 40, 24, Fraction(25), stdout=buf)
    for f in frames:
        w.write(f)
    w.close()
    data = buf.getvalue()
    assert data.startswith(b"YUV4MPEG2 W40 H24 F25:1")
    assert data.count(b"FRAME\n") == 2


def test_png_sequence_output(tmp_path: Path) -> None:
    frames = synthetic_frames(32, 16, 3)
    write_clip(tmp_path / "o_%05d.png", frames)
    assert sorted(os.listdir(tmp_path)) == ["o_00001.png", "o_00002.png", "o_00003.png"]
    with pytest.raises(VideoIOError, match="exists"):
        open_writer(str(tmp_path / "o_%05d.png"), 32, 16, Fraction(25))


class _ShortWrites(io.RawIOBase):
    """A pipe end whose every write takes at most `limit` bytes, as a raw pipe's may."""

    def __init__(self, inner, limit: int) -> None:
        self.inner, self.limit = inner, limit

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self.inner.write(bytes(memoryview(data)[: self.limit]))

    def close(self) -> None:
        self.inner.close()
        super().close()


def test_write_all_finishes_short_writes() -> None:
    sink = io.BytesIO()
    data = bytes(range(256)) * 40
    short = _ShortWrites(sink, 777)
    ff.write_all(short, data)
    assert sink.getvalue() == data


def test_writer_keeps_every_frame_when_pipe_writes_are_short(tmp_path: Path) -> None:
    # Under CI a partial pipe write (e.g. a SIGCHLD handler interrupting it) once cost
    # `mcodec restore` its last frame: the writer must loop until the frame is in the pipe.
    frames = synthetic_frames(96, 64, 7)
    w = open_writer(str(tmp_path / "s.mkv"), 96, 64, Fraction(25))
    w._proc._proc.stdin = _ShortWrites(w._proc._proc.stdin, 1000)
    with w:
        for f in frames:
            w.write(f)
    got = list(open_video(str(tmp_path / "s.mkv")))
    assert len(got) == 7 and all(np.array_equal(a.y, b.y) for a, b in zip(got, frames))


def test_writer_keeps_every_frame_while_signals_interrupt_writes(tmp_path: Path) -> None:
    # The real mechanism: a Python SIGCHLD handler (torch's DataLoader installs one) and
    # children exiting while the writer blocks on a full pipe.
    old = signal.signal(signal.SIGCHLD, lambda *_: None)
    stop = threading.Event()

    def spawn() -> None:
        while not stop.is_set():
            subprocess.run(["true"], check=False)

    spawner = threading.Thread(target=spawn, daemon=True)
    try:
        spawner.start()
        rng = np.random.default_rng(0)
        w, h = 640, 360
        frame = Frame(rng.integers(0, 256, (h, w), dtype=np.uint8),
                      np.full((h // 2, w // 2), 128, np.uint8), np.full((h // 2, w // 2), 128, np.uint8))
        with open_writer(str(tmp_path / "i.mkv"), w, h, Fraction(25)) as out:
            for _ in range(30):
                out.write(frame)
    finally:
        stop.set()
        spawner.join()
        signal.signal(signal.SIGCHLD, old)
    with open_video(str(tmp_path / "i.mkv")) as r:
        assert sum(1 for _ in r) == 30


def test_writer_is_atomic_and_refuses_overwrite(tmp_path: Path) -> None:
    frames = synthetic_frames(32, 16, 2)
    target = tmp_path / "out.mkv"
    with pytest.raises(RuntimeError):
        with open_writer(str(target), 32, 16, Fraction(25)) as w:
            w.write(frames[0])
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == []  # no partial file left behind
    write_clip(target, frames)
    with pytest.raises(VideoIOError, match="-y"):
        open_writer(str(target), 32, 16, Fraction(25))
    with pytest.raises(VideoIOError, match="unsupported output"):
        open_writer(str(tmp_path / "x.avi"), 32, 16, Fraction(25))
    with pytest.raises(VideoIOError, match="even"):
        open_writer(str(tmp_path / "odd.mp4"), 33, 16, Fraction(25))


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoIOError, match="not found"):
        open_video(str(tmp_path / "missing.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(VideoIOError):
        open_video(str(junk))
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    with pytest.raises(VideoIOError):
        open_video(str(empty))
    with pytest.raises(VideoIOError):
        open_video(str(tmp_path))


def test_reader_close_ends_ffmpeg(clips_dir: Path) -> None:
    reader = open_video(str(clips_dir / "calendar_720x576.mkv"))
    next(reader)
    reader.close()
    assert reader._proc.returncode is not None


def test_missing_ffmpeg_gives_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ff.ENV_VAR, str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(FFmpegNotFoundError, match="MCODEC_FFMPEG"):
        ff.find_ffmpeg()
    monkeypatch.delenv(ff.ENV_VAR)
    import imageio_ffmpeg

    def no_binary() -> str:
        raise RuntimeError("no bundled binary")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_binary)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FFmpegNotFoundError, match="no working ffmpeg"):
        ff.find_ffmpeg()


def test_ffmpeg_errors_carry_stderr(tmp_path: Path) -> None:
    from mcodec.errors import FFmpegError

    with pytest.raises(FFmpegError, match="exit code"):
        ff.run_ffmpeg(ff.base_args() + ["-i", ff.input_url(str(tmp_path / "nope.mkv")),
                                        "-f", "null", "-"], "probe")


def test_ffmpeg_stopped_by_ctrl_c_is_an_interruption_not_an_error(tmp_path: Path) -> None:
    """At loglevel error, an ffmpeg stopped by SIGINT exits 255 and says nothing: that is the
    user's Ctrl-C (which reaches ffmpeg first), not a failure to report as one."""
    import signal
    import time

    from mcodec.errors import FFmpegError

    args = ff.base_args() + ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-f", "null", "-"]
    with ff.FFmpegProcess(args) as proc:
        time.sleep(0.5)
        assert proc.returncode is None  # endless source: still running
        os.kill(proc._proc.pid, signal.SIGINT)
        proc._proc.wait(timeout=10)
        assert proc.returncode == 255
        with pytest.raises(KeyboardInterrupt):
            proc.error("reading lavfi")
    # a real failure at the same loglevel still names what failed
    with pytest.raises(FFmpegError, match="exit code"):
        ff.run_ffmpeg(ff.base_args() + ["-i", ff.input_url(str(tmp_path / "nope.mkv")),
                                        "-f", "null", "-"], "probe")


def test_parsers() -> None:
    assert parse_size("416x240") == (416, 240)
    assert parse_fps("30000/1001") == Fraction(30000, 1001)
    assert parse_fps("25") == 25
    for bad in ("416", "0x10", "20000x10"):
        with pytest.raises(VideoIOError):
            parse_size(bad)
    for bad in ("0", "abc", "-5"):
        with pytest.raises(VideoIOError):
            parse_fps(bad)
    log = "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 640x272"
    assert source_pix_fmt_from_log(log) == "yuv420p"
