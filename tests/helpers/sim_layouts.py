"""MIG layouts applied once per test session: the first test that applies a layout to a fresh
simulated node applies it for real (``mig.apply`` through the simulated NVML); every later test
that applies the same layout to the same starting state gets the state that apply left (the
whole state document, written under the simulator's lock). Applying is what ``tests/unit/mig``
tests; for the tests that only need the layout in place (labels, resources, CDI specs), it was
most of their time.

The key is the layout, the node's whole state before it and the simulated clock's reading, so
a cached state is only reused where applying again would write the same document."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gpu_operator.gpu import Nvml

_APPLIED: dict[tuple[str, str, float], str] = {}


def apply_once(nvml: Nvml, layout_key: str, apply: Callable[[Nvml], object]) -> None:
    """``apply(nvml)``, or the state it left the last time it ran from this same state."""
    fake: Any = nvml.nvml
    store = fake._store  # the simulated node's StateStore
    key = (layout_key, json.dumps(store.read(), sort_keys=True), float(fake._clock()))
    after = _APPLIED.get(key)
    if after is None:
        apply(nvml)
        _APPLIED[key] = json.dumps(store.read(), sort_keys=True)
        return
    with store.update() as doc:
        doc.clear()
        doc.update(json.loads(after))
