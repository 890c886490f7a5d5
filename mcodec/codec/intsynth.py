"""Exact integer-grid networks: the decoder's heavy convolutions in float32, bit-exact by construction.

Why
---
The synthesis transform is most of a decoder's work. Run in float32 its last
bits depend on the summation order (thread count, SIMD width, CPU, GPU), and the
8-bit rounding of ~1e-3 of the samples would flip, so mcodec-s3 runs it in
float64 (`IntraCodec.synthesize`), which costs ~9x the float32 time on this CPU.

This module makes float32 exact instead. Every heavy convolution sees
*integer-valued* float32 operands whose worst-case sum is proven below 2^24:

    A = clamp(round(a / step[c]), -amax, amax)           activations on a grid
    W = round(w * step[c_in] / wscale[c_out])            weights (step folded in)
    acc = conv(A, W)                                     float32, any order
    pre = bias[c_out] + acc * wscale[c_out]              elementwise

Every partial sum of ``conv(A, W)`` is an integer of magnitude at most
``amax * L1``, where L1 is the largest sum of ``|W|`` feeding one output sample
(per output channel and, for a stride-2 transposed convolution, per output
phase). When that bound is <= 2^24 every partial sum is exactly representable in
float32, so the result is exact whatever order or blocking the kernel uses (FMA
included). The bounds are computed from the stored integers, and `IntSynthesis`
refuses to build (so a model refuses to load) when one exceeds 2^24
(`check_bounds` lists them). The input channels of a convolution may be split
into chunks, each an exact sum with its own weight scales, whose scaled results
are added in a fixed order (`IntConv`). The inverse GDN's normalisation is a 1x1
convolution and is done the same way on ``Q = clamp(round(pre^2 / sqstep), 0, sqmax)``.
Everything else (scaling, bias, square root, product, rounding) is elementwise
IEEE arithmetic, one correctly rounded operation at a time in a fixed order (no
fused multiply-add), and so identical on every machine.

Conditions for exactness, enforced here: convolutions without Winograd/FFT
algorithms or reduced-precision math (on CUDA, TF32 is switched off around the
calls; CPU convolutions are direct/GEMM in PyTorch); the first transposed
convolution and its inverse GDN (1/16 of the output resolution, ~5 % of the
work) stay in float64 on the exact dyadic latent, as in mcodec-s3.

`IntChain` is the general form: a float64 head, then stages of one `IntConv` and
its activation (`IntGDN`, `Leaky`, or none). `IntSynthesis` is the chain of
`g_s` = [deconv, IGDN, deconv, IGDN, deconv, IGDN, conv]: layers 0-1 float64,
then three integer stages, the last one's output rounded to the 8-bit grid. The
entropy path uses the same chains (`IntraCodec.attach_integer_entropy`): the
hyper-decoder `h_s` (its first transposed convolution and LeakyReLU in float64),
the checkerboard context convolution and its parameter network; their outputs
are snapped onto the entropy grids (`entropy.quantize_entropy_params`) as the
float64 ones were, identically on both sides of the coder.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Every integer of magnitude <= 2^24 is exact in float32.
ACC_LIMIT = 2 ** 24


@dataclass(frozen=True, eq=False)
class IntConv:
    """One convolution on integer grids, its input channels in `chunks` exact partial sums.

    Splitting the input channels into chunks gives each chunk's sum its own 2^24
    budget (the chunks' scaled results are added elementwise, in a fixed order),
    so the weights get `chunks` times finer grids at the same number of
    multiply-adds.

    Attributes:
        weight: integer-valued float32, (out, in, k, k) for a convolution,
            (in, out, k, k) for a transposed one.
        wscale: (chunks, out) float32: pre-activation = bias + sum_g acc_g * wscale[g].
        bias: (out,) float32.
        step: (in,) float32 grid step of the input activations.
        amax: input activations are clamped to [-amax, amax] grid steps.
        transposed, stride, padding, output_padding: as in torch.
    """

    weight: Tensor
    wscale: Tensor
    bias: Tensor
    step: Tensor
    amax: int
    transposed: bool
    stride: int
    padding: int
    output_padding: int

    @property
    def chunks(self) -> int:
        return int(self.wscale.shape[0])

    def _chunk(self, g: int) -> tuple[slice, Tensor]:
        """Input-channel slice of chunk g and its weights."""
        n_in = self.weight.shape[0 if self.transposed else 1]
        size = n_in // self.chunks
        sl = slice(g * size, (g + 1) * size)
        return sl, (self.weight[sl] if self.transposed else self.weight[:, sl])

    def quantize(self, a: Tensor) -> Tensor:
        """Input activations (B, in, H, W) -> integer values on the grid (same dtype).

        One temporary, rounded and clamped in place (large frames: memory)."""
        return (a / self.step.view(1, -1, 1, 1)).round_().clamp_(-self.amax, self.amax)

    def accumulate(self, q: Tensor) -> list[Tensor]:
        """Exact integer convolutions of quantized input `q`, one per chunk (float32, integer values)."""
        q = q.to(self.weight.dtype)  # integers: exact in float32
        out = []
        for g in range(self.chunks):
            sl, w = self._chunk(g)
            x = q[:, sl]
            out.append(F.conv_transpose2d(x, w, None, self.stride, self.padding, self.output_padding)
                       if self.transposed else F.conv2d(x, w, None, self.stride, self.padding))
        return out

    def __call__(self, a: Tensor) -> Tensor:
        # (bias + acc_0 w_0) + acc_1 w_1 + ...: this order, in place on the accumulators
        pre = None
        for g, acc in enumerate(self.accumulate(self.quantize(a))):
            acc.mul_(self.wscale[g].view(1, -1, 1, 1))
            pre = acc.add_(self.bias.view(1, -1, 1, 1)) if pre is None else pre.add_(acc)
        return pre

    def bound(self) -> int:
        """Largest |partial sum| any chunk's accumulation can reach (integers, exact)."""
        worst = 0
        for g in range(self.chunks):
            w = self._chunk(g)[1].detach().to(torch.int64)
            l1, _ = _output_l1(w.transpose(0, 1) if self.transposed else w,
                               self.stride if self.transposed else 1)
            worst = max(worst, int(l1.max()))
        return worst * self.amax


@dataclass(frozen=True, eq=False)
class IntGDN:
    """Inverse GDN, out = pre * sqrt(beta + gamma @ pre^2), with the 1x1 sum on integer grids.

    Attributes:
        gamma: integer-valued float32 (C, C, 1, 1), the sqstep scale folded in.
        gscale: (C,) float32: norm = acc * gscale + beta.
        beta: (C,) float32.
        sqstep: (C,) float32 grid step of pre^2; sqmax its largest grid value.
    """

    gamma: Tensor
    gscale: Tensor
    beta: Tensor
    sqstep: Tensor
    sqmax: int

    def __call__(self, pre: Tensor) -> Tensor:
        q = (pre * pre).div_(self.sqstep.view(1, -1, 1, 1)).round_().clamp_(0, self.sqmax)
        norm = F.conv2d(q, self.gamma)
        del q
        norm.mul_(self.gscale.view(1, -1, 1, 1)).add_(self.beta.view(1, -1, 1, 1)).sqrt_()
        return norm.mul_(pre)

    def bound(self) -> int:
        return int(self.gamma.detach().to(torch.int64).abs().sum(dim=(1, 2, 3)).max()) * self.sqmax


def _run_float64(module: nn.Module, x: Tensor) -> Tensor:
    """Run `module` on float64 `x` with float64 copies of its parameters and buffers
    (the float64 paths of the model and the calibration here)."""
    from torch.func import functional_call

    state = {k: (v.detach().to(torch.float64) if v.is_floating_point() else v.detach())
             for k, v in [*module.named_parameters(), *module.named_buffers()]}
    with torch.no_grad():
        return functional_call(module, state, (x.to(torch.float64),))


@contextlib.contextmanager
def _exact_float32(device: torch.device):
    """No TF32 (10-bit mantissa) on CUDA while the integer convolutions run."""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@dataclass(frozen=True, eq=False)
class Leaky:
    """LeakyReLU between integer stages (elementwise, exact)."""

    slope: float

    def __call__(self, pre: Tensor) -> Tensor:
        return F.leaky_relu_(pre, self.slope)


Activation = IntGDN | Leaky | None


def _channels_last(t: Tensor) -> Tensor:
    """A 4-D tensor in channels-last memory order (same values; others unchanged)."""
    return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t


def _stored_int(t: Tensor) -> Tensor:
    """An integer-valued tensor as int16 when it fits, else int32 (`from_tensors` reads either)."""
    return t.to(torch.int16 if float(t.abs().max()) <= 32767 else torch.int32)


class IntChain:
    """A float64 head, then convolutions on integer grids with their activations.

    Built by `from_float` (calibration, at export) or `from_tensors` (stored bundle);
    `__call__` returns the last convolution's float32 output.
    """

    def __init__(self, head: nn.Module | None, stages: list[tuple[IntConv, Activation]]) -> None:
        # float64 copy of the head layers, made once
        self.head = copy.deepcopy(head).to(torch.float64).eval() if head is not None else None
        self.stages = stages
        if any(b > limit for b, limit in self.check_bounds()):
            raise ValueError("integer network: an accumulation can exceed 2^24")
        # What runs: the same stages with channels-last weights, which oneDNN convolves
        # up to 2x faster here (transposed 5x5 stride 2: 12.3 -> 5.8 ms at 416x240).
        # Every partial sum is an exact integer below 2^24 (check_bounds), so the
        # summation order a memory format implies cannot change a bit of the output.
        self._run = [(replace(conv, weight=_channels_last(conv.weight)),
                      replace(act, gamma=_channels_last(act.gamma)) if isinstance(act, IntGDN) else act)
                     for conv, act in stages]

    def __call__(self, x: Tensor) -> Tensor:
        with torch.no_grad(), _exact_float32(x.device):
            # the head runs in float64; the first stage quantizes its output in float64
            a = self.head(x.to(torch.float64)) if self.head is not None else x
            a = _channels_last(a)
            for conv, act in self._run:
                a = conv(a)
                if act is not None:
                    a = act(a)
            return a.contiguous()

    def check_bounds(self) -> list[tuple[int, int]]:
        """(bound, limit) per integer accumulation; building refuses any bound over the limit."""
        out = []
        for conv, act in self.stages:
            out.append((conv.bound(), ACC_LIMIT))
            if isinstance(act, IntGDN):
                out.append((act.bound(), ACC_LIMIT))
        return out

    # -- construction -----------------------------------------------------------

    @classmethod
    def from_float(cls, layers: nn.Sequential, calib: list[Tensor], head: int,
                   amax: int | tuple[int, ...] = 511, sqmax: int = 4095, margin: float = 1.25,
                   chunks: int = 1):
        """Quantize trained `layers` on calibration inputs.

        `layers[:head]` stay float64; from there each Conv2d / ConvTranspose2d starts
        a stage, with the inverse GDN or LeakyReLU after it as its activation.
        Per-channel activation steps are the calibration maxima times `margin` over
        `amax` (one value, or one per stage); weight scales are as fine as the 2^24
        bound allows for each of `chunks` slices of the input channels.
        """
        from compressai.layers import GDN

        mods = list(layers)
        convs = [i for i in range(head, len(mods)) if isinstance(mods[i], (nn.Conv2d, nn.ConvTranspose2d))]
        acts: dict[int, list[Tensor]] = {}
        with torch.no_grad():
            for x in calib:
                a = x.to(torch.float64)
                for i, layer in enumerate(mods):
                    if i >= head:
                        acts.setdefault(i, []).append(a.abs().amax(dim=(0, 2, 3)))
                    a = _run_float64(layer, a)
        amaxes = (amax,) * len(convs) if isinstance(amax, int) else tuple(amax)
        if len(amaxes) != len(convs):
            raise ValueError(f"amax: {len(convs)} values needed, got {len(amaxes)}")
        stages: list[tuple[IntConv, Activation]] = []
        with torch.no_grad():
            for i, stage_amax in zip(convs, amaxes, strict=True):
                peak = torch.stack(acts[i]).amax(dim=0) * margin
                conv = _quantize_conv(mods[i], torch.clamp(peak, min=1e-6) / stage_amax, stage_amax, chunks)
                act: Activation = None
                nxt = mods[i + 1] if i + 1 < len(mods) else None
                if isinstance(nxt, GDN):
                    if not nxt.inverse:
                        raise ValueError("only the inverse GDN has an integer form here")
                    act = _quantize_gdn(nxt, torch.stack(acts[i + 1]).amax(dim=0) * margin, sqmax)
                elif isinstance(nxt, nn.LeakyReLU):
                    act = Leaky(float(nxt.negative_slope))
                elif nxt is not None and not isinstance(nxt, (nn.Conv2d, nn.ConvTranspose2d)):
                    raise ValueError(f"no integer form for {type(nxt).__name__}")
                stages.append((conv, act))
        return cls(nn.Sequential(*mods[:head]) if head else None, stages)

    def to_tensors(self, prefix: str) -> dict[str, Tensor]:
        """Tensors for a bundle (integer weights and GDN gammas as int16 when every value
        fits, else int32, to keep weight files small; the rest float32)."""
        out: dict[str, Tensor] = {}
        for k, (conv, act) in enumerate(self.stages):
            p = f"{prefix}{k}."
            out[p + "weight"] = _stored_int(conv.weight)
            out[p + "wscale"], out[p + "bias"], out[p + "step"] = conv.wscale, conv.bias, conv.step
            out[p + "meta"] = torch.tensor([conv.amax, int(conv.transposed), conv.stride, conv.padding,
                                            conv.output_padding], dtype=torch.int32)
            if isinstance(act, IntGDN):
                out[p + "gamma"] = _stored_int(act.gamma)
                out[p + "gscale"], out[p + "beta"], out[p + "sqstep"] = act.gscale, act.beta, act.sqstep
                out[p + "sqmax"] = torch.tensor([act.sqmax], dtype=torch.int32)
            elif isinstance(act, Leaky):
                out[p + "leaky"] = torch.tensor([act.slope], dtype=torch.float32)
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}

    @classmethod
    def from_tensors(cls, head: nn.Module | None, tensors: dict[str, Tensor], prefix: str,
                     device: str | torch.device = "cpu"):
        """Inverse of `to_tensors`; `head` is the float network's head layers (or None)."""
        stages = []
        k = 0
        while f"{prefix}{k}.weight" in tensors:
            p = f"{prefix}{k}."

            def get(name: str, p: str = p) -> Tensor:
                return tensors[p + name].to(device=device, dtype=torch.float32)

            amax, transposed, stride, padding, out_pad = (int(v) for v in tensors[p + "meta"])
            wscale = get("wscale")
            conv = IntConv(get("weight"), wscale.view(-1, wscale.shape[-1]), get("bias"), get("step"), amax,
                           bool(transposed), stride, padding, out_pad)
            act: Activation = None
            if p + "gamma" in tensors:
                act = IntGDN(get("gamma"), get("gscale"), get("beta"), get("sqstep"), int(tensors[p + "sqmax"][0]))
            elif p + "leaky" in tensors:
                act = Leaky(float(tensors[p + "leaky"][0]))
            stages.append((conv, act))
            k += 1
        if not stages:
            raise ValueError(f"no integer network tensors under {prefix!r}")
        return cls(head, stages)


class IntSynthesis(IntChain):
    """The synthesis transform with its heavy layers on integer grids (see the module docstring).

    `__call__` maps the gained latent (1, M, h/8, w/8) (float64) to the (1, 6, h, w)
    reconstruction on the 8-bit grid k/255 (float32).
    """

    HEAD = 2  # the first transposed convolution and its inverse GDN stay float64

    def __call__(self, x: Tensor) -> Tensor:
        return super().__call__(x).clamp_(0.0, 1.0).mul_(255.0).round_().div_(255.0)

    @classmethod
    def from_float(cls, g_s: nn.Sequential, calib: list[Tensor], amax: int | tuple[int, ...] = 511,
                   sqmax: int = 4095, margin: float = 1.25, chunks: int = 1) -> IntSynthesis:
        """Quantize a trained `g_s` on calibration inputs (gained latents, (1, M, h, w))."""
        return super().from_float(g_s, calib, cls.HEAD, amax, sqmax, margin, chunks)


def _output_l1(w: Tensor, phases: int) -> tuple[Tensor, int]:
    """(out,) largest sum of |w| feeding one output sample, and the most taps feeding one.

    `w` is (out, in, k, k), out-channel axis first. A stride-s transposed convolution
    (`phases` = s) feeds each output phase (py, px) from the taps w[..., py::s, px::s]
    only, so its worst case is the largest phase's sum; a convolution has one phase.
    The weight quantization sizes its scales with this and `IntConv.bound` checks the
    stored integers with it.
    """
    k = w.shape[-1]
    taps = [w[:, :, py:k:phases, px:k:phases] for py in range(phases) for px in range(phases)]
    l1 = torch.stack([t.abs().sum(dim=(1, 2, 3)) for t in taps]).amax(dim=0)
    return l1, max(t[0].numel() for t in taps)


def _quantize_conv(mod: nn.Module, step: Tensor, amax: int, chunks: int) -> IntConv:
    """Integer weights for `mod` (Conv2d / ConvTranspose2d) given its input step (in,)."""
    transposed = isinstance(mod, nn.ConvTranspose2d)
    w = mod.weight.detach().to(torch.float64)
    # Fold the input step into the weights; out-channel axis first.
    if transposed:  # (in, out, k, k)
        wf = (w * step.view(-1, 1, 1, 1)).transpose(0, 1)  # (out, in, k, k)
    else:
        wf = w * step.view(1, -1, 1, 1)
    stride = mod.stride[0]
    n_in = wf.shape[1]
    if n_in % chunks:
        raise ValueError(f"{n_in} input channels do not split into {chunks} chunks")
    size = n_in // chunks
    budget = ACC_LIMIT // amax
    scales, ints = [], []
    for g in range(chunks):
        part = wf[:, g * size:(g + 1) * size]
        l1, terms = _output_l1(part, stride if transposed else 1)
        # Rounding adds at most 1/2 per term: sum|round(v)| <= sum|v| + terms/2.
        scale = torch.clamp(l1, min=1e-12) / (budget - terms / 2 - 1)
        scales.append(scale)
        ints.append(torch.round(part / scale.view(-1, 1, 1, 1)))
    wi = torch.cat(ints, dim=1)
    if transposed:
        wi = wi.transpose(0, 1)
    bias = mod.bias.detach().to(torch.float64) if mod.bias is not None else torch.zeros(wf.shape[0],
                                                                                        dtype=torch.float64)
    conv = IntConv(wi.to(torch.float32).contiguous(), torch.stack(scales).to(torch.float32),
                   bias.to(torch.float32), step.to(torch.float32), amax, transposed, stride,
                   mod.padding[0], mod.output_padding[0] if transposed else 0)
    if conv.bound() > ACC_LIMIT:
        raise ValueError("weight quantization broke the 2^24 bound")
    return conv


def _quantize_gdn(g: nn.Module, pre_peak: Tensor, sqmax: int) -> IntGDN:
    """Integer gamma for an inverse GDN given the peak |pre-activation| per channel."""
    c = g.beta.numel()
    beta = g.beta_reparam(g.beta).detach().to(torch.float64)
    gamma = g.gamma_reparam(g.gamma).detach().to(torch.float64).reshape(c, c)
    sqstep = torch.clamp(pre_peak.to(torch.float64) ** 2, min=1e-12) / sqmax
    gf = gamma * sqstep.view(1, -1)  # norm_i = beta_i + sum_j gf_ij * Q_j
    l1 = gf.abs().sum(dim=1)
    budget = ACC_LIMIT // sqmax
    gscale = torch.clamp(l1, min=1e-12) / (budget - c / 2 - 1)
    gi = torch.round(gf / gscale.view(-1, 1))
    out = IntGDN(gi.view(c, c, 1, 1).to(torch.float32).contiguous(), gscale.to(torch.float32),
                 beta.to(torch.float32), sqstep.to(torch.float32), sqmax)
    if out.bound() > ACC_LIMIT:
        raise ValueError("gamma quantization broke the 2^24 bound")
    return out
