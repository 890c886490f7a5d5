"""Learned intra (key-frame) codec working natively on YUV 4:2:0 planes.

Input: one (1, 6, H/2, W/2) tensor per frame, luma space-to-depth'ed by 2 and
stacked with U and V (`mcodec.codec.packing`); no RGB conversion anywhere.

`IntraCodec` is a small mean-scale hyperprior (Balle et al. 2018, Minnen et al.
2018) with GDN, made variable-rate by per-quality gain vectors on the latent and
the hyper-latent (Cui et al. 2021, "asymmetric gained VAE"): quality q scales the
latent by ``gain[q]`` before quantization and by a separately learned
``inv_gain[q]`` before synthesis, so one network serves every level.

A two-pass checkerboard context (He et al. 2021, a masked-modeling context:
half the latent is coded, the other half predicted from it and coded with the
refined parameters) is on by default (`ModelConfig.context`): on a frozen,
2k-step base it cut the rate by 31 % at equal PSNR on held-out crops (it will
shrink as the hyperprior trains; the paper reports ~7 % for converged models).

MAE-style latent masking (`compress(..., mask=)`, `decompress(..., mask=)`,
`forward(..., mask=)`): a masked latent position (one 16x16 luma patch, all
channels) sends no symbols; both sides set y_hat there to the entropy model's
grid-quantized mean (masked anchors enter the checkerboard context as their
means), and the synthesis rebuilds the patch from the visible latents around
it. Trained with random masks and whole-image distortion, the decoder learns
that fill-in (He et al. 2022, "Masked Autoencoders Are Scalable Vision
Learners"). `estimate` gives the encoder the per-position rate (and an approximate
reconstruction) for its mask decision.

Entropy coding goes through `mcodec.codec.entropy`, which makes the decoder
exactly reproducible (float64 or integer-grid hyper-decoder, context and synthesis,
grid-quantized means and scale indexes); see that module's docstring. The
decoding dataflow is `mcodec.codec.latent_decoder`'s, shared with its
`LatentDecoder` (the same decoder without this class and CompressAI): this class
provides the exact pieces it needs (`ExactParts`: tables, medians, `hyper_decode`,
`context_params`, `synthesize`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mcodec.codec import entropy as ent
from mcodec.codec import latent_decoder as ld
from mcodec.codec import latent_encoder as le
from mcodec.codec.distortion import yuv_weighted
from mcodec.codec.intsynth import IntChain, IntSynthesis, _run_float64
from mcodec.codec.latent_decoder import anchor_mask, check_mask
from mcodec.codec.latent_encoder import Analysis, Compressed, Estimate
from mcodec.codec.latent_encoder import gaussian_likelihood as _gaussian_likelihood
from mcodec.codec.model_config import ModelConfig


def _import_compressai():
    """Import compressai's layers, silencing only its torch.jit.script FutureWarning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated",
                                category=FutureWarning)
        from compressai.entropy_models import EntropyBottleneck, GaussianConditional
        from compressai.layers import GDN
        from compressai.models import CompressionModel
        from compressai.models.utils import conv, deconv
        from compressai.ops import LowerBound
    return EntropyBottleneck, GaussianConditional, GDN, CompressionModel, conv, deconv, LowerBound


(EntropyBottleneck, GaussianConditional, GDN, CompressionModel, conv, deconv,
 LowerBound) = _import_compressai()

# ModelConfig.tensor_stride: the analysis transform's downsampling of the 6-channel
# tensor (8, or 4 for the fine networks). The hyper-analysis adds HYPER_STRIDE
# (latent_decoder.py) more, handled by padding the latent internally, so frames only
# need padding to tensor_stride.


def mse_yuv(x_hat: Tensor, x: Tensor, chroma_weight: float = 1.0) -> Tensor:
    """(B,) per-image MSE weighted Y:U:V = 6:w:w on 6-channel tensors (units of [0,1]^2).

    Luma MSE is the mean over the 4 space-to-depth channels, so this equals
    (6 * MSE_Y + w * MSE_U + w * MSE_V) / 8 on the planes; w = `chroma_weight`
    (1: the PSNR-YUV 6:1:1 weighting applied to MSE).
    """
    d = (x_hat - x).pow(2).mean(dim=(2, 3))
    return yuv_weighted(d[:, :4].mean(dim=1), d[:, 4], d[:, 5], chroma_weight)


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)
class Likelihoods:
    """Per-element likelihoods (probabilities in (0, 1]) of the two latents.

    Attributes:
        y: (B, M, H/16, W/16) latent likelihoods (H, W: padded luma size).
        z: (B, N, ceil(H/64), ceil(W/64)) hyper-latent likelihoods.
    """

    y: Tensor
    z: Tensor


@dataclass(frozen=True, eq=False)
class ForwardOutput:
    """Result of `IntraCodec.forward`.

    Attributes:
        x_hat: (B, 6, h, w) reconstruction (clamped to [0, 1] in eval mode only).
        likelihoods: see `Likelihoods`.
        bits: (B,) estimated bits per image (-sum log2 likelihoods).
    """

    x_hat: Tensor
    likelihoods: Likelihoods
    bits: Tensor


def _ste_round(x: Tensor) -> Tensor:
    """round() with an identity gradient (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


class IntraCodec(CompressionModel):
    """Variable-rate mean-scale hyperprior on the 6-channel YUV 4:2:0 tensor.

    Shapes (x is (B, 6, h, w) with h, w multiples of config.tensor_stride):
        y = g_a(x): (B, M, h/8, w/8); z = h_a(y): (B, N, ceil(h/32), ceil(w/32)).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = config or ModelConfig()
        self.config = config
        n, m, levels = config.n, config.m, config.levels
        # latent_stride 8: the analysis' middle and the synthesis' last stride-2 layer
        # become 3x3 convolutions at stride 1. At 5x5 they would cost as much as coding
        # at 2x (a 5x5 64->64 layer at half resolution is ~70 % of the synthesis); every
        # other layer keeps its shape, so a stride-16 network initialises them.
        mid, mid_k = (2, 5) if config.latent_stride == 16 else (1, 3)
        self.g_a = nn.Sequential(
            conv(6, n, kernel_size=3, stride=1), GDN(n),
            conv(n, n, kernel_size=mid_k, stride=mid), GDN(n),
            conv(n, n, stride=2), GDN(n),
            conv(n, m, stride=2),
        )
        self.g_s = nn.Sequential(
            deconv(m, n, stride=2), GDN(n, inverse=True),
            deconv(n, n, stride=2), GDN(n, inverse=True),
            deconv(n, n, kernel_size=mid_k, stride=mid), GDN(n, inverse=True),
            conv(n, 6, kernel_size=3, stride=1),
        )
        self.h_a = nn.Sequential(
            conv(m, n, kernel_size=3, stride=1), nn.LeakyReLU(inplace=True),
            conv(n, n, stride=2), nn.LeakyReLU(inplace=True),
            conv(n, n, stride=2),
        )
        self.h_s = nn.Sequential(
            deconv(n, m, stride=2), nn.LeakyReLU(inplace=True),
            deconv(m, m * 3 // 2, stride=2), nn.LeakyReLU(inplace=True),
            conv(m * 3 // 2, m * 2, kernel_size=3, stride=1),
        )
        if config.context:
            # Checkerboard context. cb_ctx sees the anchors only (non-anchors are
            # zeroed), so at non-anchor positions it is a masked convolution.
            # cb_ep refines the hyperprior's (means, log-scales) residually; its
            # last layer starts at zero, i.e. at the plain hyperprior.
            self.cb_ctx = nn.Conv2d(m, 2 * m, kernel_size=5, padding=2)
            self.cb_ep = nn.Sequential(
                nn.Conv2d(4 * m, 3 * m, 1), nn.LeakyReLU(inplace=True), nn.Conv2d(3 * m, 2 * m, 1))
            nn.init.zeros_(self.cb_ep[-1].weight)
            nn.init.zeros_(self.cb_ep[-1].bias)
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.gaussian_conditional = GaussianConditional(None)
        # Gains in log domain (positive by construction). Initialised on a
        # sqrt-lambda ladder: high-rate theory puts the quantizer step ~ 1/sqrt(lambda),
        # lambdas spaced ~2x per level -> gains spaced ~sqrt(2).
        ramp = torch.linspace(-0.5, 0.5, levels) * math.log(2.0) * (levels - 1) / 2
        self.log_gain = nn.Parameter(ramp[:, None].repeat(1, m).clone())
        self.log_inv_gain = nn.Parameter(-ramp[:, None].repeat(1, m).clone())
        self.log_hgain = nn.Parameter(torch.zeros(levels, n))
        self.log_hinv_gain = nn.Parameter(torch.zeros(levels, n))
        self.scale_lower_bound = LowerBound(ent.SCALE_MIN)
        self.likelihood_lower_bound = LowerBound(1e-9)
        # Exact fast reconstruction and entropy parameters, when the model ships them
        # (not parameters: built from this network's weights at export).
        self.int_synthesis: IntSynthesis | None = None
        self.int_hyper: IntChain | None = None
        self.int_context: tuple[IntChain, IntChain] | None = None

    # -- helpers --------------------------------------------------------------

    @property
    def levels(self) -> int:
        return self.config.levels

    @property
    def device(self) -> torch.device:
        """Where the network's parameters live."""
        return self.log_gain.device

    @property
    def tensor_stride(self) -> int:
        """The input tensor's padding multiple (`ModelConfig.tensor_stride`)."""
        return self.config.tensor_stride

    def _check_quality(self, quality: int) -> int:
        return ld.check_quality(quality, self.levels)

    def _check_input(self, x: Tensor) -> None:
        s = self.config.tensor_stride
        if x.dim() != 4 or x.shape[1] != 6 or x.shape[2] % s or x.shape[3] % s:
            raise ValueError(f"input must be (B, 6, h, w) with h, w multiples of {s}, "
                             f"got {tuple(x.shape)}")

    def _gain(self, table: Tensor, q: int) -> Tensor:
        return torch.exp(table[q]).view(1, -1, 1, 1)

    @staticmethod
    def _hyper_pad(y: Tensor) -> Tensor:
        """Replicate-pad the latent to a multiple of HYPER_STRIDE (not transmitted)."""
        return le.hyper_pad(y)

    # -- latent_decoder.ExactParts: the exact pieces encoder and decoder share ----

    @property
    def context(self) -> bool:
        return self.config.context

    @property
    def channels(self) -> tuple[int, int]:
        return self.config.n, self.config.m

    def z_tables(self) -> ent.Tables:
        return ent.tables(self.entropy_bottleneck)

    def y_tables(self) -> ent.Tables:
        return ent.tables(self.gaussian_conditional)

    def z_medians(self) -> Tensor:
        """(1, N, 1, 1) float32 hyper-latent medians (stored quantiles)."""
        return ent.factorized_medians(self.entropy_bottleneck).view(1, -1, 1, 1)

    def entropy_parameters(self, z_hat: Tensor, quality: int, y_shape: tuple[int, int]) -> ent.EntropyParams:
        """Grid-quantized (means, scale indexes) of y from the decoded hyper-latent.

        Runs the hyper-decoder in float64 (see `mcodec.codec.entropy` for why).

        Args:
            z_hat: (B, N, hz, wz) decoded hyper-latent (integers + stored medians).
            quality: level index.
            y_shape: (rows, cols) of the latent to crop the prediction to.
        """
        means, log_scales = self.hyper_decode(z_hat, quality, y_shape).chunk(2, dim=1)
        return ent.quantize_entropy_params(means, log_scales)

    def hyper_decode(self, z_hat: Tensor, quality: int, y_shape: tuple[int, int]) -> Tensor:
        """(B, 2M, rows, cols) exact hyper-decoder output (means, log-scales): float64, or
        float32 from the integer hyper-decoder when the model ships one."""
        q = self._check_quality(quality)
        zs = z_hat.detach().to(torch.float64) * torch.exp(
            self.log_hinv_gain.detach()[q].to(torch.float64)).view(1, -1, 1, 1)
        hs = self.int_hyper(zs) if self.int_hyper is not None else _run_float64(self.h_s, zs)
        return hs[:, :, :y_shape[0], :y_shape[1]]

    def _context_out(self, hs: Tensor, y_hat_anchors: Tensor) -> Tensor:
        """Non-anchor (means, log-scales): hyperprior output refined by the decoded anchors."""
        return hs + self.cb_ep(torch.cat([hs, self.cb_ctx(y_hat_anchors)], dim=1))

    def context_params(self, hs64: Tensor, y_hat_anchors: Tensor) -> ent.EntropyParams:
        """Grid-quantized non-anchor parameters, computed exactly like the hyperprior's
        (float64, or on integer grids when the model ships an integer context)."""
        if self.int_context is not None:
            ctx_net, ep_net = self.int_context
            hs = hs64.to(torch.float32)
            ctx = ctx_net(y_hat_anchors.to(torch.float32))
            out = hs + ep_net(torch.cat([hs, ctx], dim=1))
        else:
            ctx = _run_float64(self.cb_ctx, y_hat_anchors.to(torch.float64))
            out = hs64 + _run_float64(self.cb_ep, torch.cat([hs64, ctx], dim=1))
        means, log_scales = out.chunk(2, dim=1)
        return ent.quantize_entropy_params(means, log_scales)

    # -- training / estimation -----------------------------------------------

    def forward(self, x: Tensor, quality: int, mask: Tensor | None = None) -> ForwardOutput:
        """Reconstruction and rate estimate of a batch at one quality level.

        Training mode: additive-noise likelihoods, straight-through rounding for
        the synthesis input (mixed quantization). Eval mode: the exact coding
        path (grid-quantized parameters), so `bits` matches the rANS size closely.

        Args:
            x: (B, 6, h, w) in [0, 1], h and w multiples of config.tensor_stride.
            quality: integer level in 0..levels-1.
            mask: optional (B, h/8, w/8) (or (h/8, w/8), same for all) bool, True =
                latent position masked (MAE): y_hat there is the entropy model's
                mean (no noise, no rounding) and its likelihood is 1 (no rate),
                exactly what `compress(..., mask=)` does; the distortion is still
                taken over the whole image by the caller, so the synthesis learns
                to fill masked patches in from their visible neighbours.
        """
        self._check_input(x)
        q = self._check_quality(quality)
        y = self.g_a(x) * self._gain(self.log_gain, q)
        hy, wy = y.shape[2:]
        mk = check_mask(mask, int(hy), int(wy), batch=x.shape[0])
        if mk is not None:
            mk = mk.to(y.device)
        z = self.h_a(self._hyper_pad(y)) * self._gain(self.log_hgain, q)
        _, z_lik = self.entropy_bottleneck(z)
        med = self.z_medians()
        if self.training:
            z_hat = _ste_round(z - med) + med
            out = self.h_s(z_hat * self._gain(self.log_hinv_gain, q))[:, :, :hy, :wy]
            if self.config.context:
                m0 = out[:, :self.config.m]
                a = anchor_mask(hy, wy).to(y.device)
                y_hat_a = _ste_round(y - m0) + m0
                if mk is not None:  # masked anchors reach the context as their means
                    y_hat_a = torch.where(mk, m0, y_hat_a)
                out = torch.where(a, out, self._context_out(out, y_hat_a * a))
            means, log_scales = out.chunk(2, dim=1)
            scales = self.scale_lower_bound(torch.exp(log_scales.clamp(max=math.log(ent.SCALE_MAX))))
            y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
            y_lik = _gaussian_likelihood(y_noisy - means, scales)
            y_hat = _ste_round(y - means) + means
        else:
            z_hat = torch.round(z - med) + med
            p, _ = ld.coding_params(self, self.hyper_decode(z_hat, q, (hy, wy)), y.detach(), mask=mk)
            _, y_hat = ent.quantize_to_tables(self.gaussian_conditional, y, p)
            y_lik = _gaussian_likelihood(y_hat - p.means, p.scales)
            means = p.means
        if mk is not None:
            y_hat = torch.where(mk, means, y_hat)
            y_lik = torch.where(mk, torch.ones_like(y_lik), y_lik)
        y_lik = self.likelihood_lower_bound(y_lik)
        x_hat = self.g_s(y_hat * self._gain(self.log_inv_gain, q))
        if not self.training:
            x_hat = x_hat.clamp(0.0, 1.0)
        bits = -(torch.log2(y_lik).sum(dim=(1, 2, 3)) + torch.log2(z_lik).sum(dim=(1, 2, 3)))
        return ForwardOutput(x_hat=x_hat, likelihoods=Likelihoods(y=y_lik, z=z_lik), bits=bits)

    # -- coding ----------------------------------------------------------------

    def update(self, scale_table: Tensor | None = None, force: bool = False,
               update_quantiles: bool = False) -> bool:
        """Build the CDF tables from the weights (export time only).

        The Gaussian tables always use `entropy.scale_table()`, whose indexes
        `entropy.quantize_entropy_params` computes.
        """
        if scale_table is not None:
            raise ValueError("IntraCodec uses entropy.scale_table(); do not pass another")
        return super().update(scale_table=ent.scale_table().to(torch.float32), force=force,
                              update_quantiles=update_quantiles)

    @property
    def num_strings(self) -> int:
        """Number of byte strings `compress` returns: 3 with the checkerboard context, else 2."""
        return 3 if self.config.context else 2

    # -- encoding (latent_encoder.EncoderParts; the dataflow is latent_encoder's) -----

    def check_frame(self, x: Tensor, quality: int) -> int:
        self._check_input(x)
        if x.shape[0] != 1:
            raise ValueError("compress codes one frame at a time (batch size 1)")
        return self._check_quality(quality)

    def analyse(self, x: Tensor, q: int) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder front end of one frame: (y, z symbols int32, hs64 = exact hyper-decoder output)."""
        y = self.g_a(x.to(torch.float32)) * self._gain(self.log_gain, q)
        hy, wy = int(y.shape[2]), int(y.shape[3])
        z = self.h_a(le.hyper_pad(y)) * self._gain(self.log_hgain, q)
        med = self.z_medians()
        z_sym = ent.clamp_factorized(self.entropy_bottleneck, torch.round(z - med).to(torch.int32)[0])[None]
        z_hat = z_sym.to(torch.float32) + med
        return y, z_sym, self.hyper_decode(z_hat, q, (hy, wy))

    def approximate_synthesis(self, y_hat: Tensor, q: int) -> Tensor:
        return self.g_s(y_hat * self._gain(self.log_inv_gain, q)).clamp(0.0, 1.0)

    def strings_per_frame(self, packed: bool) -> int:
        """Strings per coded frame: 1 when packed (format version 4), else `num_strings`."""
        return ld.strings_per_frame(self.config.context, packed)

    @torch.no_grad()
    def compress(self, x: Tensor, quality: int, reconstruct: bool = True,
                 mask: Tensor | None = None, packed: bool = False,
                 analysis: Analysis | None = None) -> Compressed:
        """Entropy-code one frame: `latent_encoder.compress` (its docstring has the
        arguments; a mask cell is one latent position, `config.latent_stride` luma
        pixels square)."""
        return le.compress(self, x, quality, reconstruct, mask, packed, analysis)

    @torch.no_grad()
    def estimate(self, x: Tensor, quality: int, mask: Tensor | None = None,
                 analysis: Analysis | None = None) -> Estimate:
        """What coding `x` (masked by `mask`) would cost and give: `latent_encoder.estimate`."""
        return le.estimate(self, x, quality, mask, analysis)

    def synthesize(self, y_hat: Tensor, q: int) -> Tensor:
        """Decoder-side reconstruction, (1, 6, h, w) float32 on the 8-bit grid k/255.

        With an integer synthesis attached (`attach_integer_synthesis`; models
        whose bundle carries one, e.g. mcodec-s3i) the heavy layers run in float32
        on integer grids, exact by construction (`mcodec.codec.intsynth`).
        Otherwise the float64 path of mcodec-s3: float32 noise from thread count
        or CPU kernels (~1e-6) would flip the final rounding of ~1e-3 of the
        samples, and a predicted frame referencing this one would then drift;
        float64 noise (~1e-14) practically never does, at ~9x the float32 time.
        """
        gain = torch.exp(self.log_inv_gain.detach()[q].to(torch.float64)).view(1, -1, 1, 1)
        x = y_hat.detach().to(torch.float64) * gain
        if self.int_synthesis is not None:
            return self.int_synthesis(x)
        x = _run_float64(self.g_s, x)
        return (torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0).to(torch.float32)

    def attach_integer_synthesis(self, synthesis: IntSynthesis | None) -> None:
        """Use `synthesis` (built from this network's g_s) for every exact reconstruction."""
        self.int_synthesis = synthesis

    def attach_integer_entropy(self, hyper: IntChain | None,
                               context: tuple[IntChain, IntChain] | None) -> None:
        """Use integer networks (built from h_s, and from cb_ctx and cb_ep) for the exact
        entropy parameters, on both sides of the coder."""
        self.int_hyper = hyper
        self.int_context = context

    @torch.no_grad()
    def decompress(self, strings: tuple[bytes, ...] | list[bytes], shape: tuple[int, int],
                   quality: int, mask: Tensor | None = None, packed: bool = False) -> Tensor:
        """Decode one frame: (1, 6, 8*rows, 8*cols) float32 tensor of values k/255.

        Args:
            strings: the `strings_per_frame(packed)` strings from `compress`.
            shape: (rows, cols) of the latent from `compress`.
            quality: the level it was coded at.
            mask: the (rows, cols) bool mask given to `compress` (None: unmasked).
            packed: as given to `compress`.
        """
        return ld.decompress(self, strings, shape, self._check_quality(quality), mask, packed)

    # -- weights ---------------------------------------------------------------

    @classmethod
    def from_safetensors(cls, path: str, device: str | torch.device = "cpu") -> IntraCodec:
        """Load exported weights (CDF tables included; no pickle, no update())."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta:
            raise ValueError(f"{path}: no config in safetensors metadata")
        model = cls(ModelConfig.from_json(meta["config"]))
        model.load_state_dict(load_file(path, device=str(device)))
        return model.eval()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
