"""`python -m alma_tui` is `alma-tui` (the TUI starts the engine this way)."""

import sys

from alma_tui.cli import main

sys.exit(main())
