"""Progress bars that show only where someone watches: on a terminal or in Jupyter, never in a log.

tqdm writing to a file or a pipe (CI logs, ``make test | tee log``) prints one line per refresh and floods the
log. :func:`progress_bar` is ``tqdm.auto.tqdm`` with ``disable=True`` unless stderr is a terminal or the code runs
in a Jupyter kernel; every bar of the package goes through it. ``ACTMATCH_PROGRESS=1`` (or ``0``) forces bars on
(or off) wherever they run.
"""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

ENV = "ACTMATCH_PROGRESS"


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (a notebook, JupyterLab, nbclient), where tqdm draws a widget."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def watched(stream=None) -> bool:
    """Whether a bar on ``stream`` (default ``sys.stderr``) would be seen: a terminal or a Jupyter kernel, unless
    the environment variable ``ACTMATCH_PROGRESS`` says ``1`` or ``0``."""
    forced = os.environ.get(ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):   # no isatty, or a closed stream
        pass
    return _in_jupyter()


def progress_bar(*args, disable: bool = False, **kwargs) -> tqdm:
    """``tqdm.auto.tqdm(*args, **kwargs)``, disabled when asked (``disable``) or when nobody watches
    (:func:`watched`): then it still iterates and counts, but prints nothing."""
    return tqdm(*args, disable=disable or not watched(kwargs.get("file")), **kwargs)
