"""``python -m mtopt`` runs the ``mtopt`` command line."""

import sys

from mtopt.cli import main

sys.exit(main())
