"""Preloaded by the forkserver the preview workers fork from, and imported nowhere else.

It warms the process (`preview_worker.warm`: fully when the command previews many stacks, else
the common part only, as `previews.start_warming` said through `BLUEPRINT_PREVIEW_WARM`), then
detaches it from the command's output: the forkserver outlives the command by the time it takes
to notice, and while it holds the command's stdout and stderr, `blueprint plan | jq` waits for
it. It also leaves without interpreter shutdown (about 0.4 s with pulumi loaded): nothing in it
is worth finalising.
"""

from __future__ import annotations

import atexit
import os

from mlops_blueprint import preview_worker

preview_worker.warm(full=os.environ.get("BLUEPRINT_PREVIEW_WARM") == "full")
_devnull = os.open(os.devnull, os.O_RDWR)
for _fd in (0, 1, 2):
    os.dup2(_devnull, _fd)
atexit.register(os._exit, 0)  # atexit runs before the interpreter tears itself down
