"""``python -m mitosis`` is the original mitosis's command, as ``mitosis`` is."""

import sys

from mitosis.original_cli import main

sys.exit(main())
