"""``python -m mcodec.train`` (and ``torchrun ... -m mcodec.train``): the trainer's command line."""

import sys

from mcodec.train.trainer import run_module

sys.exit(run_module())
