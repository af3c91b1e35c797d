"""``python -m cdlib`` is the ``cdlib`` command."""

import sys

from cdlib.cli.main import main

sys.exit(main())
