"""``python -m manygrad``: the same as the ``manygrad`` command."""

from .cli.main import main

raise SystemExit(main())
