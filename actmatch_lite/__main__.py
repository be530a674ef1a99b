"""``python -m actmatch_lite ...``: see :mod:`actmatch_lite.cli`."""
import sys

from actmatch_lite.cli import main

sys.exit(main())
