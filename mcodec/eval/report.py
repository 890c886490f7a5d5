"""Bench outputs: results.json, results.csv, report.md and RD plots.

Everything here is derived from a :class:`mcodec.eval.results.BenchResult`; no
coding happens. Points are written through their one serialisation
(``PointResult.to_dict`` for results.json, ``PointResult.row`` for results.csv,
``PointResult.value`` for the tables); every file goes through
:func:`mcodec.atomic.atomic_write`.

Aggregation rules (stated in the report too):

* Average RD curve of a codec: at each of its rate points, the mean over clips
  of kbps, bpp and every metric (only points present for every clip).
* BD-rate matrix (headline): for each pair (anchor row, test column), the mean
  over clips of the per-clip BD-rate of the test codec against the anchor, on
  PSNR-YUV (mean of per-frame 6:1:1) with PCHIP interpolation over log-rate;
  clips where BD-rate is undefined (curve not monotonic, no overlap, NaN
  metric) are left out and counted. Also given: Akima, MS-SSIM-Y, and BD-rate
  computed once on the average RD curves (rate as mean bpp).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcodec.atomic import atomic_write
from mcodec.eval.bdrate import MIN_OVERLAP, bd_rate
from mcodec.eval.results import BenchResult, PointResult

HEADLINE = ("PSNR-YUV = mean over frames of the per-frame (6·PSNR-Y + PSNR-U + PSNR-V)/8, "
            "8-bit 4:2:0, computed by mcodec on frames decoded from the coded files "
            "(PSNR capped at 100 dB)")
# The scalars (PointResult.value names) averaged over clips and shown in the tables.
AVG_METRICS = ("kbps", "bpp", "psnr_yuv", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv_mse",
               "msssim_y", "vmaf", "encode_s", "decode_s")


@dataclass(frozen=True)
class BDCell:
    """One cell of a BD-rate matrix: mean BD-rate (%) over `n` of `total` clips."""

    value: float
    n: int
    total: int
    warnings: tuple[str, ...] = ()
    per_clip: tuple[tuple[str, float], ...] = ()  # (clip, BD-rate %) for the valid clips


def curves(result: BenchResult) -> dict[str, dict[str, list[PointResult]]]:
    """codec -> clip -> points (in the codec's point order)."""
    out: dict[str, dict[str, list[PointResult]]] = {}
    for p in result.points:
        out.setdefault(p.codec, {}).setdefault(p.clip, []).append(p)
    return out


def average_curves(result: BenchResult) -> dict[str, list[dict[str, float]]]:
    """codec -> one dict per rate point with the mean over clips of AVG_METRICS.

    Only rate points coded for every clip are kept. NaN metrics stay NaN.
    """
    clip_names = [c.name for c in result.clips]
    out: dict[str, list[dict[str, float]]] = {}
    for codec, by_clip in curves(result).items():
        pts: dict[float, list[PointResult]] = {}
        for clip in clip_names:
            for p in by_clip.get(clip, []):
                pts.setdefault(p.point, []).append(p)
        rows = []
        for point, group in pts.items():
            if len(group) != len(clip_names):
                continue
            row = {"point": point}
            for key in AVG_METRICS:
                row[key] = float(np.mean([p.value(key) for p in group]))
            rows.append(row)
        out[codec] = rows
    return out


def bd_matrix(result: BenchResult, metric: str = "psnr_yuv", method: str = "pchip",
              rate: str = "kbps") -> dict[tuple[str, str], BDCell]:
    """(anchor, test) -> mean over clips of BD-rate(test vs anchor) in percent."""
    by_codec = curves(result)
    names = [c.name for c in result.codecs]
    clips = [c.name for c in result.clips]
    out: dict[tuple[str, str], BDCell] = {}
    for a in names:
        for t in names:
            vals, warns, per_clip = [], [], []
            for clip in clips:
                pa, pt = by_codec.get(a, {}).get(clip, []), by_codec.get(t, {}).get(clip, [])
                try:
                    r = bd_rate([p.value(rate) for p in pa], [p.value(metric) for p in pa],
                                [p.value(rate) for p in pt], [p.value(metric) for p in pt],
                                method=method, min_overlap=MIN_OVERLAP if a != t else 0.0,
                                label=f"BD-rate {clip} {t} vs {a} ({metric}, {method})")
                except ValueError as exc:
                    if a != t:
                        warns.append(f"not computed: {exc}")
                    continue
                vals.append(r.value)
                per_clip.append((clip, r.value))
                if r.warning:
                    warns.append(r.warning)
            out[(a, t)] = BDCell(float(np.mean(vals)) if vals else math.nan, len(vals),
                                 len(clips), tuple(warns), tuple(per_clip))
    return out


def bd_matrix_on_average(result: BenchResult, metric: str = "psnr_yuv",
                         method: str = "pchip") -> dict[tuple[str, str], BDCell]:
    """(anchor, test) -> BD-rate computed once on the average curves (rate = mean bpp)."""
    avg = average_curves(result)
    names = [c.name for c in result.codecs]
    out: dict[tuple[str, str], BDCell] = {}
    for a in names:
        for t in names:
            ra, rt = avg.get(a, []), avg.get(t, [])
            try:
                r = bd_rate([x["bpp"] for x in ra], [x[metric] for x in ra],
                            [x["bpp"] for x in rt], [x[metric] for x in rt], method=method,
                            min_overlap=MIN_OVERLAP if a != t else 0.0,
                            label=f"BD-rate average curve {t} vs {a} ({metric}, {method})")
                out[(a, t)] = BDCell(r.value, 1, 1, (r.warning,) if r.warning and a != t else ())
            except ValueError as exc:
                out[(a, t)] = BDCell(math.nan, 0, 1, (str(exc),) if a != t else ())
    return out


MATRICES = {
    # key: (title in report.md, metric, method, on the average curve)
    "psnr_yuv_pchip_mean_of_clips": ("PSNR-YUV, PCHIP, mean of per-clip BD-rates (headline)",
                                     "psnr_yuv", "pchip", False),
    "psnr_yuv_akima_mean_of_clips": ("Same, Akima interpolation", "psnr_yuv", "akima", False),
    "msssim_y_pchip_mean_of_clips": ("Same on MS-SSIM-Y (PCHIP)", "msssim_y", "pchip", False),
    "psnr_yuv_pchip_on_average_curve": ("BD-rate on the average RD curve (mean bpp and mean "
                                        "PSNR-YUV over clips, PCHIP)", "psnr_yuv", "pchip", True),
}


@dataclass(frozen=True)
class Analysis:
    """Aggregates derived once from a BenchResult (each BD-rate computed, and any
    overlap warning logged, once)."""

    average: dict[str, list[dict[str, float]]]
    matrices: dict[str, dict[tuple[str, str], BDCell]]


def analyse(result: BenchResult) -> Analysis:
    """Average curves and every BD-rate matrix of :data:`MATRICES`."""
    matrices = {}
    for key, (_, metric, method, on_average) in MATRICES.items():
        matrices[key] = (bd_matrix_on_average(result, metric, method) if on_average
                         else bd_matrix(result, metric, method))
    return Analysis(average_curves(result), matrices)


# --------------------------------------------------------------------- writers


def _clean(x: Any) -> Any:
    """Recursively make JSON-safe: NaN/inf -> None, tuples -> lists."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


def _matrix_json(m: dict[tuple[str, str], BDCell]) -> list[dict[str, Any]]:
    return [{"anchor": a, "test": t, "bd_rate_percent": c.value, "clips": c.n,
             "of_clips": c.total, "warnings": list(c.warnings)} for (a, t), c in m.items()]


def results_json(result: BenchResult, analysis: Analysis | None = None) -> dict[str, Any]:
    """The content of results.json (JSON-ready)."""
    an = analysis or analyse(result)

    return _clean({
        "schema": 1,
        "headline_metric": HEADLINE,
        "config": result.config.to_dict(),
        "frames_requested": result.frames,
        "started": result.started,
        "seconds": result.seconds,
        "points_encoded": result.encoded,
        "points_from_cache": result.cached,
        "ffmpeg": {"path": result.ffmpeg_path, "version": result.ffmpeg_version},
        "machine": dict(result.machine),
        "clips": [c.to_dict() for c in result.clips],
        "codecs": [c.to_dict() for c in result.codecs],
        "bd_rate": {key: _matrix_json(m) for key, m in an.matrices.items()},
        "average": an.average,
        "points": [p.to_dict() for p in result.points],
    })


def results_csv(result: BenchResult) -> str:
    """The content of results.csv: one row per (clip, codec, point), scalars only."""
    rows = [p.row() for p in result.points]
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                             for k, v in r.items()})
    return buf.getvalue()


def _f(x: float, nd: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def _matrix_md(m: dict[tuple[str, str], BDCell], names: Sequence[str]) -> str:
    lines = ["| anchor \\ test | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for a in names:
        cells = []
        for t in names:
            c = m[(a, t)]
            txt = "n/a" if not math.isfinite(c.value) else f"{c.value:+.1f} %"
            if c.n < c.total and math.isfinite(c.value):
                txt += f" ({c.n}/{c.total})"
            cells.append(txt)
        lines.append(f"| **{a}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _points_table(rows: Sequence[dict[str, float]], label: str) -> str:
    head = (f"| {label} | kbps | bpp | PSNR-YUV | PSNR-Y | PSNR-U | PSNR-V | PSNR-YUV (of mean MSE) "
            "| MS-SSIM-Y | VMAF | enc s | dec s |")
    lines = [head, "|" + "---:|" * 12]
    for r in rows:
        lines.append(f"| {r['point']:g} | {_f(r['kbps'], 1)} | {_f(r['bpp'], 4)} | "
                     f"{_f(r['psnr_yuv'])} | {_f(r['psnr_y'])} | {_f(r['psnr_u'])} | "
                     f"{_f(r['psnr_v'])} | {_f(r['psnr_yuv_mse'])} | {_f(r['msssim_y'], 4)} | "
                     f"{_f(r['vmaf'])} | {_f(r['encode_s'])} | {_f(r['decode_s'])} |")
    return "\n".join(lines)


def report_markdown(result: BenchResult, plots: dict[str, str] | None = None,
                    analysis: Analysis | None = None) -> str:
    """The content of report.md."""
    an = analysis or analyse(result)
    cfg = result.config
    names = [c.name for c in result.codecs]
    ref = "x264" if "x264" in names else names[0]
    by_codec = curves(result)
    avg = an.average
    m_pchip = an.matrices["psnr_yuv_pchip_mean_of_clips"]
    out: list[str] = []
    w = out.append
    w("# mcodec RD bench\n")
    w(f"- Started {result.started}, {result.seconds:.0f} s; {result.encoded} points coded, "
      f"{result.cached} from the cache.")
    w(f"- Configuration **{cfg.config}**, key-frame interval (gop) {cfg.gop}, up to "
      f"{result.frames} frames per clip{' (quick mode)' if cfg.quick else ''}.")
    w("- Clips: " + ", ".join(f"{c.name} ({c.width}x{c.height}, {c.frames} frames, "
                               f"{c.fps:g} fps)" for c in result.clips) + ".")
    w(f"- Headline metric: {HEADLINE}. "
      "PSNR of the mean MSE is reported alongside (column 'of mean MSE').")
    w("- MS-SSIM on luma (pytorch-msssim, 5 scales; n/a for frames with a side <= 160). "
      + ("VMAF: ffmpeg libvmaf, default model." if cfg.vmaf else "VMAF not computed (--vmaf)."))
    w("- Rate: bytes of each codec's elementary stream (see the table below), kbps = "
      "bytes·8·fps/frames/1000, bpp = bytes·8/(frames·width·height). Frames are decoded from "
      "the files with ffmpeg (`-fps_mode passthrough`) and the decoded frame count is checked "
      "against the source.")
    w(f"- ffmpeg: `{result.ffmpeg_version}`; machine: {result.machine.get('cpu', '?')}, "
      f"{result.machine.get('cpu_count', '?')} CPUs, {result.machine.get('platform', '')}.\n")

    w("## Codecs\n")
    w("| codec | configuration | rate points | encoder version | rate counted on |")
    w("|---|---|---|---|---|")
    for c in result.codecs:
        pts = ", ".join(f"{p:g}" for p in c.points)
        w(f"| {c.name} | {c.description} | {c.point_label} {pts} | {c.encoder_version or '?'} "
          f"| {c.stream_format} |")
    w("\nExact command lines are in results.json / results.csv.\n")

    w("## BD-rate matrix (headline)\n")
    w("Each cell: BD-rate of the **column** codec against the **row** codec, mean of the "
      "per-clip BD-rates, PSNR-YUV, PCHIP over log-rate; negative = the column codec needs "
      "less rate. '(n/m)': only n of m clips had a valid BD-rate.\n")
    w(_matrix_md(m_pchip, names) + "\n")
    for key, (title, *_rest) in list(MATRICES.items())[1:]:
        w(f"### {title}\n")
        w(_matrix_md(an.matrices[key], names) + "\n")

    w("## Average over clips\n")
    if "plot:average" in (plots or {}):
        w(f"![RD average]({os.path.basename(plots['plot:average'])})\n")
    for name in names:
        c = next(x for x in result.codecs if x.name == name)
        w(f"### {name}\n")
        w(_points_table(avg.get(name, []), c.point_label) + "\n")

    w("## Per clip\n")
    for clip in result.clips:
        w(f"### {clip.name}\n")
        if plots and f"plot:{clip.name}" in plots:
            w(f"![RD {clip.name}]({os.path.basename(plots[f'plot:{clip.name}'])})\n")
        if ref in by_codec and len(names) > 1:
            w(f"BD-rate vs {ref} (PSNR-YUV, PCHIP): " + ", ".join(
                f"{t} {_clip_bd(m_pchip[(ref, t)], clip.name)}" for t in names if t != ref) + "\n")
        for name in names:
            pts = by_codec.get(name, {}).get(clip.name, [])
            rows = [{"point": p.point, **{k: p.value(k) for k in AVG_METRICS}} for p in pts]
            w(f"**{name}**\n")
            w(_points_table(rows, pts[0].point_label if pts else "point") + "\n")

    warned = False
    for key, (title, *_rest) in MATRICES.items():
        warns = sorted({x for cell in an.matrices[key].values() for x in cell.warnings})
        if warns:
            if not warned:
                w("## Warnings\n")
                warned = True
            w(f"{title}:\n")
            for x in warns:
                w(f"- {x}")
            w("")
    return "\n".join(out) + "\n"


def _clip_bd(cell: BDCell, clip: str) -> str:
    for name, value in cell.per_clip:
        if name == clip:
            return f"{value:+.1f} %"
    return "n/a"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plot_rd(series: dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
            title: str, path: Path) -> None:
    """Write an RD plot PNG: PSNR-YUV and MS-SSIM-Y against kbps (log axis).

    Args:
        series: codec -> (kbps, psnr_yuv, msssim_y), one value per rate point.
    """
    # Object-oriented Agg API: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for name, (kbps, psnr, ssim) in series.items():
        order = np.argsort(kbps)
        k = np.asarray(kbps)[order]
        ax1.plot(k, np.asarray(psnr)[order], marker="o", ms=3, label=name)
        s = np.asarray(ssim, dtype=float)[order]
        if np.any(np.isfinite(s)):
            ax2.plot(k, s, marker="o", ms=3, label=name)
    for ax, ylabel in ((ax1, "PSNR-YUV 6:1:1 (dB, mean of frames)"), (ax2, "MS-SSIM-Y")):
        ax.set_xscale("log")
        ax.set_xlabel("rate (kbps)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write(path, buf.getvalue())


def write_reports(result: BenchResult, out_dir: Path | str) -> dict[str, str]:
    """Write results.json, results.csv, report.md and the RD plots into `out_dir`.

    Returns: output kind -> path (``json``, ``csv``, ``markdown``, ``plot:<clip>``,
    ``plot:average``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    by_codec = curves(result)
    for clip in result.clips:
        series = {name: ([p.kbps for p in pts], [p.metrics.psnr_yuv for p in pts],
                         [p.metrics.msssim_y for p in pts])
                  for name, clips in by_codec.items() for pts in [clips.get(clip.name, [])] if pts}
        path = out / f"rd_{_safe_name(clip.name)}.png"
        plot_rd(series, f"{clip.name} ({result.config.config}, {clip.frames} frames)", path)
        files[f"plot:{clip.name}"] = str(path)
    avg = average_curves(result)
    path = out / "rd_average.png"
    plot_rd({n: ([r["kbps"] for r in rows], [r["psnr_yuv"] for r in rows],
                 [r["msssim_y"] for r in rows]) for n, rows in avg.items() if rows},
            f"average of {len(result.clips)} clips ({result.config.config})", path)
    files["plot:average"] = str(path)
    an = analyse(result)
    files["json"] = str(out / "results.json")
    atomic_write(out / "results.json",
                 json.dumps(results_json(result, an), indent=1, allow_nan=False))
    files["csv"] = str(out / "results.csv")
    atomic_write(out / "results.csv", results_csv(result))
    files["markdown"] = str(out / "report.md")
    atomic_write(out / "report.md", report_markdown(result, files, an))
    return files
