"""``python -m forkshare`` is the ``forkshare`` command."""

import sys

from forkshare.cli import main

sys.exit(main())
