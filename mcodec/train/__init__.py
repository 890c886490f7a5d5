"""Training of mcodec's networks, apart from the codec that uses them.

* `mcodec.train.data`: data sources: the data root (``$MCODEC_DATA`` or
  ``../shared/data`` beside the checkout), training photos and video frames,
  RGB -> YUV 4:2:0 and space-to-depth, the crop bank and sampler, pair banks,
  and the guard that refuses evaluation data (``clips/``, ``kodak/``).
* `mcodec.train.synth`: synthetic (cur, pred) motion pairs from stills and video
  for the residual (inter) network; `mcodec.train.degrade` makes a reference look
  decoded; `mcodec.train.stats` measures residuals of banks and real clips.
* `mcodec.train.trainer`: TrainConfig, the training loop, evaluation,
  checkpoints, weight and bundle export, and the command line
  (``python -m mcodec.train``, ``mcodec train``).

Importing this package imports nothing heavy (no torch); the modules load their
dependencies when used.
"""
