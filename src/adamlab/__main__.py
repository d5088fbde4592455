"""``python -m adamlab``: the ``adamlab`` command (see :mod:`adamlab.cli`)."""

import sys

from .cli import main

sys.exit(main())
