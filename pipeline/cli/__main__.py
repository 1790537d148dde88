"""``python -m pipeline.cli`` is ``agentwatch``."""

import sys

from pipeline.cli import main

sys.exit(main())
