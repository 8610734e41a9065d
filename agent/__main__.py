"""``python -m prescreen`` runs the CLI."""

import sys

from prescreen.commands.main import main

sys.exit(main())
