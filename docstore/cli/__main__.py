"""``python -m docstore.cli``: the ``docstore`` command."""

import sys

from . import main

sys.exit(main())
