"""The architecture hyper-parameters of a latent codec network (`ModelConfig`).

Its own module so that the decoder (`mcodec.codec.latent_decoder`, `zoo.load_decoders`)
reads a bundle's configuration without importing the training model and CompressAI.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters (stored with checkpoints and in safetensors metadata).

    Attributes:
        n: channels of the hidden transform layers.
        m: latent channels.
        levels: number of quality levels (0 = smallest file).
        context: two-pass checkerboard context (He et al. 2021): the "anchor"
            half of the latent (i+j even) is coded with the hyperprior alone,
            the other half with parameters refined from the decoded anchors.
            Measured on a frozen 2k-step base: -31 % rate at equal PSNR.
    """

    n: int = 64
    m: int = 96
    levels: int = 8
    context: bool = True

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        fields = json.loads(text)
        fields.setdefault("context", False)  # configs written before the context existed
        return cls(**fields)
