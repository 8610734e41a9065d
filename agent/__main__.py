"""``python -m prescreen`` runs the CLI."""

import sys

from prescreen.cli import main

sys.exit(main())
