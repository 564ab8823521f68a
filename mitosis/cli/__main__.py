"""``python -m mitosis.cli``: the ``mitosis-nb`` command."""

import sys

from mitosis.cli import main

sys.exit(main())
