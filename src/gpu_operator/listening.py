"""Where a listener binds when it is told "every interface": the one place that gives each pod
its own address and ports when pods run as local processes (the sandbox's pod runner) instead
of in network namespaces of their own.

In a real pod, ``:8080`` is port 8080 of the pod's own network namespace, so every pod may use
it whatever the node runs. The sandbox's pods share the machine's network: it gives each its
own loopback address (``status.podIP``), named in ``GPU_OPERATOR_POD_IP``, and where one of the
pod's declared ports can't be had on that address (another program listens on ``0.0.0.0``
with it, which Linux lets no other address share) a free port stands in for it, named in
``GPU_OPERATOR_POD_PORTS`` (a JSON object: container port → the machine's port). Every
listener of ours passes its host and port through :func:`listen_address` (the operator's
metrics and health ports, the exporter, the node status exporter), and the sandbox's probes
use :func:`machine_port`, so two sandboxes, or another program on 8080, don't collide. Without
the variables (production) the address is returned unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

POD_IP_ENV = "GPU_OPERATOR_POD_IP"
POD_PORTS_ENV = "GPU_OPERATOR_POD_PORTS"
EVERY_INTERFACE = ("", "0.0.0.0", "::", "[::]")


def machine_port(port: int, environ: Mapping[str, str] | None = None) -> int:
    """The machine's port that stands for the pod's ``port`` (itself unless remapped)."""
    raw = (os.environ if environ is None else environ).get(POD_PORTS_ENV, "")
    if not raw:
        return port
    try:
        table = json.loads(raw)
        return int(table.get(str(port), port))
    except (ValueError, TypeError, AttributeError):
        return port  # only the sandbox sets it, from a dict of ints


def listen_address(
    host: str, port: int, environ: Mapping[str, str] | None = None
) -> tuple[str, int]:
    """``(host, port)``, or the pod's own address and port where ``host`` means every
    interface and the sandbox named one."""
    env = os.environ if environ is None else environ
    pod_ip = env.get(POD_IP_ENV, "")
    if not pod_ip or host not in EVERY_INTERFACE:
        return host, port
    return pod_ip, machine_port(port, env)
