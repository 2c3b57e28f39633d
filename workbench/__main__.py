"""``python -m workbench <verb>``: the same as the ``workbench`` console script (and what
``accelerate launch -m workbench`` runs)."""

import sys

from workbench.cli import main

sys.exit(main())
