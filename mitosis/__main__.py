"""``python -m mitosis`` is ``mitosis-nb``."""

import sys

from mitosis.cli import main

sys.exit(main())
