"""The one table of mcodec models (stable ids, weight files, SHA-256) and their bundles.

A bitstream names the model it needs by id and by the SHA-256 of the weight
file; a decoder refuses to decode with anything else. Weights are safetensors
bundles shipped inside the package (no pickle), and their digest is checked
before a single tensor is read.

Bundle format (what `save_bundle` writes and `load_networks` reads): tensors
"intra.*" and "inter.*" (the two networks' state dicts, CDF tables included),
metadata "config" (ModelConfig JSON) and "lambdas" (JSON list, one training
lambda per model level); the header is canonical (sorted metadata keys), so
the same networks always give the same bytes and the same SHA-256.

A model may also carry *fine* networks (`ModelConfig.latent_stride` 8: one latent
per 8x8 luma patch), which code the upper qualities at native resolution
(`mcodec.codec.ladder`): tensors "fine.intra.*" and "fine.inter.*", metadata
"fine_config" and "fine_lambdas" (their levels' training lambdas; the model's when absent);
they share the model's levels and identity (`CodecNetworks.fine`).

Only the table is light: torch and safetensors load inside the functions that
need them, so `mcodec --help` can read the table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from mcodec.errors import ModelError

if TYPE_CHECKING:
    import torch

    from mcodec.codec.intsynth import IntChain
    from mcodec.codec.latent_decoder import LatentDecoder
    from mcodec.codec.latent_encoder import LatentEncoder
    from mcodec.codec.model import IntraCodec

    IntegerParts = dict[str, IntChain]


# Tensor-name prefixes (after "intra." / "inter.") of a network's integer networks:
# the synthesis, the hyper-decoder, the checkerboard context and its parameter network.
INT_PREFIX = "int."
INT_HYPER, INT_CONTEXT, INT_PARAMS = "int_h.", "int_c.", "int_e."
_INT_PREFIXES = (INT_PREFIX, INT_HYPER, INT_CONTEXT, INT_PARAMS)
# Tensor-name prefix and metadata key of a model's fine networks (latent stride 8).
FINE_PREFIX, FINE_CONFIG, FINE_LAMBDAS = "fine.", "fine_config", "fine_lambdas"
# The integer hyper-decoder keeps h_s's first transposed convolution and LeakyReLU in float64.
HYPER_HEAD = 2


@dataclass(frozen=True)
class ModelEntry:
    """One shipped model.

    Attributes:
        model_id: stable name written into streams (never reused for other weights).
        filename: the safetensors file in ``mcodec/codec/weights/``.
        sha256: hex digest of that file.
        quality_levels: number of `--quality` levels (0 = smallest file).
        description: one line for `--help` and the model card.
        base: id of the entry whose networks this file extends (an add-on holding
            only integer networks, `mcodec.codec.intsynth`); None for a full bundle.
    """

    model_id: str
    filename: str
    sha256: str
    quality_levels: int
    description: str
    base: str | None = None

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.sha256)


# A released id keeps its weights forever, so old streams stay decodable. Before
# 1.0 the table holds only the current development model (and the float model
# its integer add-on extends, whose streams therefore still decode): streams made
# by an earlier development model fail with an error naming both ids.
MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        model_id="mcodec-s3",
        filename="mcodec-s3.safetensors",
        sha256="14b2cfdd973fedc28e939bc00f7d01c4b1ef270590991ea2aa47af5f38031868",
        quality_levels=8,
        description="small MAE video codec: intra + residual networks (N=64, M=96, "
                    "checkerboard context), 8 levels, escape-free rANS; CPU training "
                    "(intra 12.2k steps + 4k with chroma weight 6, residual 14.5k), see docs/model.md",
    ),
    ModelEntry(
        model_id="mcodec-s3i",
        filename="mcodec-s3i.safetensors",
        sha256="222c6590373721f82fd83cd90cf049a62e0c1552e4a13cd8b0b58d267389b7b7",
        quality_levels=8,
        description="mcodec-s3 with exact integer networks for the synthesis and the entropy "
                    "parameters (float32 on integer grids; mcodec.train.integerize), see docs/model.md",
        base="mcodec-s3",
    ),
    ModelEntry(
        model_id="mcodec-s3f",
        filename="mcodec-s3f.safetensors",
        sha256="81565f65062d2af5b2ef88522fdc4d3f8932403d144cb2bb3cb056e922c9b238",
        quality_levels=8,
        description="mcodec-s3i with fine networks (latent stride 8, integer networks) for the upper "
                    "layer at native size instead of coding at 2x (distilled from mcodec-s3's 2x "
                    "coding, 900 steps end to end, 300 more with the levels two up; "
                    "mcodec.train.distill), see docs/model.md",
        base="mcodec-s3i",
    ),
)
DEFAULT_MODEL_ID = "mcodec-s3f"


def get_model(model_id: str | None = None) -> ModelEntry:
    """The entry for `model_id` (default: the default model). Raises ModelError."""
    wanted = model_id or DEFAULT_MODEL_ID
    for entry in MODELS:
        if entry.model_id == wanted:
            return entry
    known = ", ".join(e.model_id for e in MODELS) or "none"
    raise ModelError(f"unknown model {wanted!r} (known: {known})")


def find_model(model_id: str, digest: bytes) -> ModelEntry:
    """The entry a stream asks for by id and SHA-256. Raises ModelError naming both ids."""
    for entry in MODELS:
        if entry.digest == digest:
            return entry
    have = ", ".join(f"{e.model_id!r} (sha256 {e.sha256[:16]}...)" for e in MODELS) or "none"
    raise ModelError(f"stream needs model {model_id!r} (sha256 {digest.hex()[:16]}...), which this "
                     f"mcodec does not have; it has {have}")


def weights_file(entry: ModelEntry) -> Path:
    """Path of the entry's weight file inside the installed package."""
    return Path(str(resources.files("mcodec.codec") / "weights" / entry.filename))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header (strings only)."""
    if len(data) < 8:
        raise ModelError("weight file too short for safetensors")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ModelError("weight file header length exceeds the file")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        raise ModelError("weight file header is not JSON") from None
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return {str(k): str(v) for k, v in meta.items()}


def load_weights(entry: ModelEntry, path: Path | None = None) -> tuple[dict, dict[str, str]]:
    """(tensors, metadata) of `entry`, after checking the file's SHA-256.

    Tensors form a torch state dict; metadata is the file's string metadata.

    Raises:
        ModelError: file missing, or its digest differs from the table.
    """
    path = path or weights_file(entry)
    if not path.is_file():
        raise ModelError(f"weights of model {entry.model_id!r} not found at {path}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ModelError(f"weights of model {entry.model_id!r} are corrupted: sha256 {digest} "
                         f"!= {entry.sha256} ({path})")
    from safetensors.torch import load  # lazy: torch is heavy

    return load(data), safetensors_metadata(data)


# ----------------------------------------------------------------------------- network bundles


@dataclass(frozen=True, eq=False)
class CodecNetworks:
    """The two learned transforms of one model, and its identity.

    Attributes:
        intra: codes key frames (6-channel YUV 4:2:0 tensor).
        inter: same architecture, codes motion-compensated residuals.
        lambdas: training rate-distortion weight per model level.
        model_id, digest: what the container records (table id, SHA-256 of the bundle).
        fine: the model's fine networks (latent stride 8, same levels and identity, their
            own training lambdas), or None when it has none.
    """

    intra: IntraCodec | LatentEncoder
    inter: IntraCodec | LatentEncoder
    lambdas: tuple[float, ...]
    model_id: str
    digest: bytes
    fine: CodecNetworks | None = None

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    @property
    def device(self) -> torch.device:
        """Where the networks live (inputs are moved there)."""
        return self.intra.device

    @property
    def tensor_stride(self) -> int:
        """The 6-channel tensor's padding multiple (`ModelConfig.tensor_stride`)."""
        return self.intra.tensor_stride

    def decoders(self) -> DecoderNetworks:
        """The decoding view of these networks (what `reconstruct.FrameDecoder` uses)."""
        def dec(net):  # a LatentEncoder decodes with its LatentDecoder, an IntraCodec itself
            return getattr(net, "decoder", net)

        return DecoderNetworks(dec(self.intra), dec(self.inter), self.levels, self.model_id, self.digest,
                               self.device, self.tensor_stride,
                               self.fine.decoders() if self.fine is not None else None)


@dataclass(frozen=True, eq=False)
class DecoderNetworks:
    """What decoding a stream needs of a model: each network's `decompress`, and its identity.

    Attributes:
        intra, inter: `LatentDecoder`s (models with integer networks, loaded without
            CompressAI by `load_decoders`) or the full `IntraCodec`s (`CodecNetworks.decoders`);
            both decode bit-identically.
        levels: number of model levels.
        model_id, digest: as in `CodecNetworks`.
        device: where the networks live.
        tensor_stride: the 6-channel tensor's padding multiple (`ModelConfig.tensor_stride`).
        fine: the decoders of the model's fine networks, or None.
    """

    intra: LatentDecoder | IntraCodec
    inter: LatentDecoder | IntraCodec
    levels: int
    model_id: str
    digest: bytes
    device: torch.device
    tensor_stride: int = 8
    fine: DecoderNetworks | None = None


def _bundle(entry: ModelEntry) -> tuple[dict, dict[str, str]]:
    """(tensors, metadata) of an entry, an add-on's merged over its base's (digests checked)."""
    tensors, metadata = load_weights(entry)
    if entry.base is not None:  # an add-on: the base bundle's networks plus these tensors
        base = get_model(entry.base)
        if metadata.get("base_sha256") != base.sha256:
            raise ModelError(f"model {entry.model_id!r} extends {base.model_id!r} with sha256 "
                             f"{metadata.get('base_sha256')}, not {base.sha256}")
        base_tensors, base_metadata = _bundle(base)   # the base may be an add-on itself
        tensors = {**base_tensors, **tensors}
        # The base's architecture and lambdas; an add-on contributes only its fine networks'.
        metadata = {**base_metadata, **{k: v for k, v in metadata.items() if k in (FINE_CONFIG, FINE_LAMBDAS)}}
    return tensors, metadata


def _entry(model_id: str | None, digest: bytes | None) -> ModelEntry:
    return find_model(model_id or "", digest) if digest is not None else get_model(model_id)


def load_networks(model_id: str | None = None, device: str = "cpu",
                  digest: bytes | None = None) -> CodecNetworks:
    """Networks of a model in the table (by id, or by the id + digest a stream names), on `device`."""
    entry = _entry(model_id, digest)
    tensors, metadata = _bundle(entry)
    return networks_from_tensors(tensors, metadata, entry.model_id, entry.digest, device)


def load_decoders(model_id: str | None = None, device: str = "cpu",
                  digest: bytes | None = None) -> DecoderNetworks:
    """The decoders of a model in the table (as `load_networks` finds it), on `device`.

    A model whose bundle carries every integer network decodes with `LatentDecoder`s,
    which need neither the encoder's networks nor CompressAI (start-up: no CompressAI
    import, ~4 s here); any other model with its full `IntraCodec`s.
    """
    entry = _entry(model_id, digest)
    tensors, metadata = _bundle(entry)
    return decoders_from_tensors(tensors, metadata, entry.model_id, entry.digest, device)


def load_encoders(model_id: str | None = None, device: str = "cpu",
                  digest: bytes | None = None) -> CodecNetworks:
    """The networks an encoder needs of a model in the table (as `load_networks` finds it).

    A model whose bundle carries every integer network encodes with `LatentEncoder`s:
    the same streams byte for byte as its `IntraCodec`s, without importing CompressAI
    (start-up). Any other model gets its full `IntraCodec`s (`load_networks`).
    """
    entry = _entry(model_id, digest)
    tensors, metadata = _bundle(entry)
    return encoders_from_tensors(tensors, metadata, entry.model_id, entry.digest, device)


def encoders_from_tensors(tensors: dict, metadata: dict[str, str], model_id: str, digest: bytes,
                          device: str = "cpu") -> CodecNetworks:
    """`CodecNetworks` of `LatentEncoder`s from a bundle (see `load_encoders`)."""
    from mcodec.codec.latent_decoder import LatentDecoder
    from mcodec.codec.latent_encoder import LatentEncoder

    config, lambdas = _bundle_config(metadata, model_id)
    main, fine_parts = _split_fine(tensors, metadata)
    main_metadata = {k: v for k, v in metadata.items() if k not in (FINE_CONFIG, FINE_LAMBDAS)}
    decoders = decoders_from_tensors(main, main_metadata, model_id, digest, device)
    if not isinstance(decoders.intra, LatentDecoder):   # no integer networks: the full model
        return networks_from_tensors(tensors, metadata, model_id, digest, device)
    fine = encoders_from_tensors(*fine_parts, model_id, digest, device) if fine_parts else None

    try:
        intra, inter = (LatentEncoder.from_tensors(main, net, dec, config.latent_stride, device)
                        for net, dec in (("intra.", decoders.intra), ("inter.", decoders.inter)))
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"model {model_id!r}: bad encoder tensors ({exc})") from None
    return CodecNetworks(intra, inter, lambdas, model_id, digest, fine)


def _bundle_config(metadata: dict[str, str], model_id: str):
    """(ModelConfig, lambdas) of a bundle's metadata. Raises ModelError."""
    from mcodec.codec.model_config import ModelConfig

    try:
        config = ModelConfig.from_json(metadata["config"])
        lambdas = tuple(float(x) for x in json.loads(metadata["lambdas"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"model {model_id!r}: bad bundle metadata ({exc})") from None
    if len(lambdas) != config.levels:
        raise ModelError(f"model {model_id!r}: {len(lambdas)} lambdas for {config.levels} levels")
    return config, lambdas


def decoders_from_tensors(tensors: dict, metadata: dict[str, str], model_id: str, digest: bytes,
                          device: str = "cpu") -> DecoderNetworks:
    """`DecoderNetworks` from a bundle's tensors and metadata (see `load_decoders`)."""
    config, _ = _bundle_config(metadata, model_id)
    tensors, fine_parts = _split_fine(tensors, metadata)
    fine = decoders_from_tensors(*fine_parts, model_id, digest, device) if fine_parts else None
    parts = (INT_PREFIX, INT_HYPER) + ((INT_CONTEXT, INT_PARAMS) if config.context else ())
    if not all(any(k.startswith(net + p) for k in tensors) for net in ("intra.", "inter.") for p in parts):
        nets = networks_from_tensors(tensors, metadata, model_id, digest, device).decoders()
        return dataclasses.replace(nets, fine=fine)
    import torch

    from mcodec.codec.latent_decoder import LatentDecoder

    try:
        intra, inter = (LatentDecoder.from_tensors(tensors, net, config.context, config.levels,
                                                   _INT_PREFIXES, device) for net in ("intra.", "inter."))
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"model {model_id!r}: bad decoder tensors ({exc})") from None
    return DecoderNetworks(intra, inter, config.levels, model_id, digest, torch.device(device),
                           config.tensor_stride, fine)


def _split_fine(tensors: dict, metadata: dict[str, str]) -> tuple[dict, tuple | None]:
    """(the main networks' tensors, (tensors, metadata) of the fine networks or None)."""
    if FINE_CONFIG not in metadata:
        return tensors, None
    main = {k: v for k, v in tensors.items() if not k.startswith(FINE_PREFIX)}
    fine = {k[len(FINE_PREFIX):]: v for k, v in tensors.items() if k.startswith(FINE_PREFIX)}
    # The fine networks' own training lambdas (their levels' rate-distortion weights), else the model's.
    lambdas = metadata.get(FINE_LAMBDAS, metadata.get("lambdas", ""))
    return main, (fine, {"config": metadata[FINE_CONFIG], "lambdas": lambdas})


def networks_from_tensors(tensors: dict, metadata: dict[str, str], model_id: str, digest: bytes,
                          device: str = "cpu") -> CodecNetworks:
    """Build `CodecNetworks` from a bundle's tensors ("intra.*", "inter.*", and "fine.*"
    when the metadata has "fine_config") and metadata."""
    from mcodec.codec import model as mdl

    config, lambdas = _bundle_config(metadata, model_id)
    tensors, fine_parts = _split_fine(tensors, metadata)
    fine = networks_from_tensors(*fine_parts, model_id, digest, device) if fine_parts else None
    from torch import nn

    from mcodec.codec.intsynth import IntChain, IntSynthesis

    nets = []
    for prefix in ("intra.", "inter."):
        net = mdl.IntraCodec(config)
        state = {k[len(prefix):]: v for k, v in tensors.items()
                 if k.startswith(prefix) and not k.startswith(tuple(prefix + p for p in _INT_PREFIXES))}
        net.load_state_dict(state, strict=True)
        net = net.to(device).eval()

        def has(part: str, prefix: str = prefix) -> bool:
            return any(k.startswith(prefix + part) for k in tensors)

        try:
            if has(INT_PREFIX):
                net.attach_integer_synthesis(IntSynthesis.from_tensors(
                    net.g_s[:IntSynthesis.HEAD], tensors, prefix + INT_PREFIX, device))
            if has(INT_HYPER) or has(INT_CONTEXT) or has(INT_PARAMS):
                net.attach_integer_entropy(
                    IntChain.from_tensors(nn.Sequential(*list(net.h_s)[:HYPER_HEAD]), tensors,
                                          prefix + INT_HYPER, device),
                    (IntChain.from_tensors(None, tensors, prefix + INT_CONTEXT, device),
                     IntChain.from_tensors(None, tensors, prefix + INT_PARAMS, device)))
        except (KeyError, ValueError) as exc:
            raise ModelError(f"model {model_id!r}: bad integer network ({exc})") from None
        nets.append(net)
    return CodecNetworks(nets[0], nets[1], lambdas, model_id, digest, fine)


def networks_from_file(path: str | os.PathLike[str], model_id: str = "local",
                       device: str = "cpu") -> CodecNetworks:
    """Networks from a bundle file outside the model table (training, tests); digest computed."""
    from safetensors.torch import load

    data = Path(path).read_bytes()
    return networks_from_tensors(load(data), safetensors_metadata(data), model_id,
                                 hashlib.sha256(data).digest(), device)


def canonical_safetensors(data: bytes) -> bytes:
    """`data` (a safetensors file) with its metadata keys sorted.

    safetensors writes ``__metadata__`` from a hash map, so the same tensors and
    metadata can come out in either key order, and the file's SHA-256 (which the
    model table pins) would depend on the run. The header is rewritten as compact
    JSON, metadata first with sorted keys, tensor entries in their original order,
    space-padded to 8 bytes as the format asks; the tensor bytes are untouched
    (their offsets are relative to the end of the header).
    """
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    if "__metadata__" in header:
        out["__metadata__"] = dict(sorted(header.pop("__metadata__").items()))
    out.update(header)
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def save_integer_addon(intra: IntegerParts, inter: IntegerParts, base: ModelEntry,
                       path: str | os.PathLike[str], note: str = "") -> str:
    """Write an add-on bundle: the two networks' integer networks, extending `base`.

    `intra`, `inter`: per network a dict of `IntChain`s keyed by tensor prefix
    (INT_PREFIX: the synthesis; INT_HYPER, INT_CONTEXT, INT_PARAMS: the entropy
    path's hyper-decoder (float64 head: its first HYPER_HEAD layers), context and
    parameter network). Tensors "intra.<prefix>*" and "inter.<prefix>*"
    (`IntChain.to_tensors`), metadata "base" / "base_sha256" (the bundle it
    extends) and "note" (how it was made); canonical header, written atomically.
    Returns its hex SHA-256.
    """
    from safetensors.torch import save

    from mcodec.atomic import atomic_write

    for parts in (intra, inter):
        if not set(parts) <= set(_INT_PREFIXES):
            raise ValueError(f"unknown integer parts {sorted(set(parts) - set(_INT_PREFIXES))}")
    tensors = {k: v for name, parts in (("intra.", intra), ("inter.", inter))
               for part, chain in parts.items() for k, v in chain.to_tensors(name + part).items()}
    data = canonical_safetensors(save(tensors, metadata={
        "base": base.model_id, "base_sha256": base.sha256, "note": note}))
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def _fine_tensors(fine: CodecNetworks, intra: IntegerParts | None = None,
                  inter: IntegerParts | None = None) -> dict:
    """The "fine.*" tensors of fine networks: float state dicts and integer parts."""
    if fine.intra.config != fine.inter.config or fine.intra.config.latent_stride != 8:
        raise ValueError("fine networks must share one ModelConfig with latent_stride 8")
    tensors = {f"{FINE_PREFIX}{prefix}.{k}": v.detach().cpu().contiguous()
               for prefix, net in (("intra", fine.intra), ("inter", fine.inter))
               for k, v in net.state_dict().items()}
    for name, parts in (("intra.", intra or {}), ("inter.", inter or {})):
        if not set(parts) <= set(_INT_PREFIXES):
            raise ValueError(f"unknown integer parts {sorted(set(parts) - set(_INT_PREFIXES))}")
        for part, chain in parts.items():
            tensors.update(chain.to_tensors(FINE_PREFIX + name + part))
    return tensors


def save_fine_addon(fine: CodecNetworks, intra: IntegerParts, inter: IntegerParts, base: ModelEntry,
                    path: str | os.PathLike[str], note: str = "") -> str:
    """Write an add-on bundle giving `base` fine networks: `fine`'s two networks (float
    state dicts, CDF tables included: "fine.intra.*", "fine.inter.*") and their integer
    networks (`intra`, `inter`, as in `save_integer_addon`, under the same prefixes),
    metadata "base" / "base_sha256", "fine_config" (their ModelConfig), "fine_lambdas"
    (their training lambdas) and "note".
    `base` may itself be an add-on. Canonical header, written atomically; returns the
    hex SHA-256."""
    from safetensors.torch import save

    from mcodec.atomic import atomic_write

    data = canonical_safetensors(save(_fine_tensors(fine, intra, inter), metadata={
        "base": base.model_id, "base_sha256": base.sha256, FINE_CONFIG: fine.intra.config.to_json(),
        FINE_LAMBDAS: json.dumps([float(x) for x in fine.lambdas]), "note": note}))
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()


def save_bundle(intra: IntraCodec, inter: IntraCodec, lambdas: tuple[float, ...],
                path: str | os.PathLike[str], fine: CodecNetworks | None = None) -> str:
    """Write the two networks as one bundle (format above; call `update()` on both first),
    with `fine` as its fine networks when given; return its hex SHA-256. Written atomically."""
    from safetensors.torch import save

    from mcodec.atomic import atomic_write

    if intra.config != inter.config:
        raise ValueError("intra and inter networks must share one ModelConfig")
    tensors = {f"{prefix}.{k}": v.detach().cpu().contiguous()
               for prefix, net in (("intra", intra), ("inter", inter))
               for k, v in net.state_dict().items()}
    metadata = {"config": intra.config.to_json(), "lambdas": json.dumps([float(x) for x in lambdas])}
    if fine is not None:
        tensors.update(_fine_tensors(fine))
        metadata[FINE_CONFIG] = fine.intra.config.to_json()
        metadata[FINE_LAMBDAS] = json.dumps([float(x) for x in fine.lambdas])
    data = canonical_safetensors(save(tensors, metadata=metadata))
    atomic_write(path, data)
    return hashlib.sha256(data).hexdigest()
