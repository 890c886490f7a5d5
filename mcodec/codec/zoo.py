"""The one table of mcodec models: stable ids, weight files and their SHA-256.

A bitstream names the model it needs by id and by the SHA-256 of the weight
file; a decoder refuses to decode with anything else. Weights are safetensors
files shipped inside the package (no pickle), and their digest is checked
before a single tensor is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mcodec.errors import ModelError


@dataclass(frozen=True)
class ModelEntry:
    """One shipped model.

    Attributes:
        model_id: stable name written into streams (never reused for other weights).
        filename: the safetensors file in ``mcodec/codec/weights/``.
        sha256: hex digest of that file.
        quality_levels: number of `--quality` levels (0 = smallest file).
        description: one line for `--help` and the model card.
    """

    model_id: str
    filename: str
    sha256: str
    quality_levels: int
    description: str

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.sha256)


# A released id keeps its weights forever, so old streams stay decodable. Before
# 1.0 the table holds only the current development model: streams made by an
# earlier development model fail with an error naming both ids.
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
)
DEFAULT_MODEL_ID = "mcodec-s3"


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
    import json
    import struct

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
