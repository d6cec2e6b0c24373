"""`python -m hub` runs the hub4com command."""

import sys

from .main import main

sys.exit(main())
