"""``python -m nsight_async``: the command line."""

import sys

from nsight_async.cli import main

sys.exit(main())
