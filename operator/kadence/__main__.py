"""`python -m kadence` is the `kadence` command."""

import sys

from kadence.cli import main

sys.exit(main())
