"""``python -m secagg``: the command line (see :mod:`secagg.cli`)."""

from __future__ import annotations

from secagg.cli import main

raise SystemExit(main())
