"""Imported only if zoo imported a code path named by a file: touching the marker proves it.

(The hostile-file test names this module in ``_target_`` metadata and checks it never loads.)
"""

import os
from pathlib import Path

_marker = os.environ.get("ZOO_H13_MARKER")
if _marker:
    Path(_marker).write_text("imported")


class Boom:
    def __init__(self, *args, **kwargs):
        if _marker:
            Path(_marker).write_text("instantiated")
