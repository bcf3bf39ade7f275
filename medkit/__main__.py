"""Command line: ``python -m medkit {phantom,data-check,supervised,pretrain,evaluate,diagnose,study,bench} ...`` (``--help`` on each)."""
from __future__ import annotations

import sys

from medkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
