"""``python -m tf4ctr`` runs the command line."""

import sys

from tf4ctr.cli import main

sys.exit(main())
