"""``python -m export ...`` is ``fovea export ...``."""

import sys

from export.cli import main

sys.exit(main())
