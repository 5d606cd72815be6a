"""`python -m syndicate` runs the command line."""

import sys

from syndicate.cli import main

sys.exit(main())
