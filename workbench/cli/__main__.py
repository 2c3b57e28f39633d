"""``python -m workbench.cli <verb>``: the same as ``python -m workbench <verb>``."""

import sys

from workbench.cli import main

sys.exit(main())
