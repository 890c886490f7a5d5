"""Evaluation: the RD bench, the demo, and the restore / anomaly test material. Each module imports only modules listed above it:

* ``metrics``  -- PSNR / MS-SSIM / VMAF of decoded frames (the one scoring path;
  PSNR itself comes from ``mcodec.codec.distortion``).
* ``bdrate``   -- Bjøntegaard delta rate / PSNR.
* ``codecs``   -- the ``Codec`` protocol and ``Encoded``: what every bench codec provides.
* ``anchors``  -- the ffmpeg anchor table (x264, x265, SVT-AV1, libaom, VVenC) as codecs.
* ``learned``  -- mcodec itself as a bench codec (weights, mask and ``EncoderTuning``).
* ``results``  -- ``BenchConfig`` and the result records, with their one serialisation.
* ``report``   -- results.json, results.csv, report.md and plots, from a ``BenchResult``.
* ``bench``    -- ``run_bench``: cut clips, code, decode, score, cache, then ``report``.
* ``demo``     -- ``mcodec demo``: the sample clip with mcodec and x265.
* ``damage``   -- synthetic damage (boxes, lost rows, dropped frames) for the restore evaluation.
* ``anomalies`` -- inserted anomalies (object, flash, frozen, foreign), the frame-difference
  baseline and ROC AUC, for the anomaly evaluation.
"""
