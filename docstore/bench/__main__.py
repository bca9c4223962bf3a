"""``python -m docstore.bench``."""

from . import main

raise SystemExit(main())
