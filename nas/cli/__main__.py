"""``python -m nas.cli``: the ``nas`` command."""

import sys

from nas.cli import main

sys.exit(main())
