"""The agents' shared logging setup: httpx's per-request lines only at DEBUG."""

from __future__ import annotations

import logging
import subprocess
import sys

from gpu_operator import logs


def test_an_agent_at_info_logs_its_own_lines_but_not_one_line_per_http_request() -> None:
    """Through the HTTP client lightkube really uses (its logger's name is the package's: httpx
    once, the httpx2 fork now), not a name the test assumes."""
    script = (
        "import logging, lightkube; from gpu_operator import logs; logs.setup(logging.INFO); "
        "[logging.getLogger(n).info('HTTP Request: GET /api/v1/nodes') "
        " for n in list(logging.root.manager.loggerDict) if n.startswith('http')]; "
        "logging.getLogger('gpu_operator.x').info('applied all-balanced')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert "INFO gpu_operator.x: applied all-balanced" in done.stderr
    assert "HTTP Request" not in done.stderr


def test_at_debug_the_http_requests_are_logged_too() -> None:
    logs.setup(logging.DEBUG)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
    logs.setup(logging.INFO)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
