"""``python -m mcodec.train ...``: the training command line (`mcodec.train.trainer.main`)."""

import sys

from mcodec.train.trainer import main

sys.exit(main())
