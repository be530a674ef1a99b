"""``python -m actmatch_lite ...``: see :mod:`actmatch_lite.interface.cli`."""
import sys

from actmatch_lite.interface.cli import main

sys.exit(main())
