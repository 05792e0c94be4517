"""``python -m monitor.cli``: the same as the ``monitor`` command."""

import sys

from monitor.cli import main

sys.exit(main())
