"""``python -m punchlab`` is the same as the ``punchlab`` command."""

import sys

from punchlab.cli import main

sys.exit(main())
