"""One logging setup for every agent: one line format, and the HTTP client's per-request INFO
lines (``httpx``/``httpx2``: one per API call, the bulk of an agent's log) only at DEBUG."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY = ("httpx", "httpx2", "httpcore")  # httpx2: the fork lightkube uses here


def setup(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
    for name in CHATTY:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
