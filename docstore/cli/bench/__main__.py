"""``python -m docstore.cli.bench``."""

from . import main

raise SystemExit(main())
