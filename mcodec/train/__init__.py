"""Training of mcodec's networks, apart from the codec that uses them.

* `mcodec.train.config`: the TOML training configuration (every key checked).
* `mcodec.train.datasets`: streaming samples (K consecutive cropped frames) from
  folder trees of videos and stills, deterministic by sample index.
* `mcodec.train.trainer`: the training loop (one process or torchrun DDP),
  checkpoints and resume, the log and its plot, export to a bundle; the command
  line (``mcodec train``, ``python -m mcodec.train``).
* `mcodec.train.data`: the data root (``$MCODEC_DATA`` or ``../shared/data``
  beside the checkout), the guard that refuses evaluation data, photos and
  colour conversion, pair banks.
* `mcodec.train.synth`: synthetic camera motion over stills (used by the
  "synthetic" source) and the pair-bank tool; `mcodec.train.degrade` makes a
  reference look decoded; `mcodec.train.stats` measures residual statistics.
* `mcodec.train.integerize`: a trained model's exact integer synthesis,
  calibrated on training video, as an add-on bundle for the model table.

Importing this package imports nothing heavy (no torch); the modules load their
dependencies when used.
"""
