"""``python -m backend <command>``: the same as the ``eo-ssl`` console script."""

from backend.cli import main

raise SystemExit(main())
