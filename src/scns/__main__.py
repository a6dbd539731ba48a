"""``python -m scns`` (and ``torchrun -m scns``) entry point."""

import sys

from scns.cli import main

sys.exit(main())
