"""A kubelet's container probes: ``startupProbe``, ``livenessProbe`` and ``readinessProbe``
with ``exec``, ``httpGet`` and ``tcpSocket`` handlers, their delays, periods, timeouts and
thresholds. A container with a startup probe is not probed otherwise until it succeeds;
``failureThreshold`` failures of a startup or liveness probe mean "restart the container";
readiness decides the container's ``ready``.

One shortcut, on purpose: periods are capped at ``PERIOD_CAP_S`` so a sandbox reacts in
seconds (a kubelet probes every ``periodSeconds``, default 10 s). Delays, timeouts and
thresholds are as written. A ``grpc`` probe is not run: it counts as success. A probe of the
pod's own address reaches the machine's port that stands for the container's port
(``gpu_operator.listening.machine_port``: the same unless the sandbox had to remap it).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gpu_operator.listening import machine_port

Obj = Mapping[str, Any]
Kind = Literal["startup", "liveness", "readiness"]
PERIOD_CAP_S = 2.0


@dataclass
class Probe:
    kind: Kind
    spec: Obj
    initial_delay_s: float
    period_s: float
    timeout_s: float
    success_threshold: int
    failure_threshold: int
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    passed: bool = False
    """Readiness: the container is ready; startup: it has started."""
    last_error: str = ""

    @classmethod
    def from_spec(cls, kind: Kind, spec: Obj, started_at: float) -> Probe:
        delay = float(spec.get("initialDelaySeconds", 0))
        return cls(
            kind=kind,
            spec=spec,
            initial_delay_s=delay,
            period_s=min(float(spec.get("periodSeconds", 10)), PERIOD_CAP_S),
            timeout_s=float(spec.get("timeoutSeconds", 1)),
            success_threshold=int(spec.get("successThreshold", 1)),
            failure_threshold=int(spec.get("failureThreshold", 3)),
            next_at=started_at + delay,
        )

    def record(self, ok: bool, error: str, now: float) -> bool:
        """Count one result; ``True`` when the failure threshold is reached (restart/unready)."""
        self.next_at = now + self.period_s
        self.last_error = error
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.success_threshold:
                self.passed = True
            return False
        self.successes, self.failures = 0, self.failures + 1
        if self.failures >= self.failure_threshold:
            self.passed = False
            return True
        return False


def check(spec: Obj, *, env: Mapping[str, str], host: str, ports: Mapping[str, int]) -> str:
    """Run one probe handler; returns ``""`` on success, else why it failed."""
    timeout = float(spec.get("timeoutSeconds", 1))
    if "exec" in spec:
        command = list((spec["exec"] or {}).get("command") or [])
        try:
            done = subprocess.run(
                command, env=dict(env), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return f"exec {command}: timed out after {timeout:g}s"
        except OSError as error:
            return f"exec {command}: {error}"
        return "" if done.returncode == 0 else f"exec {command}: exit code {done.returncode}"
    if "httpGet" in spec:
        return _http(spec["httpGet"] or {}, host, ports, timeout, env)
    if "tcpSocket" in spec:
        target = spec["tcpSocket"] or {}
        try:
            port = _port(target.get("port"), ports, target, env)
        except ValueError as error:
            return f"tcp: {error}"
        try:
            with socket.create_connection((target.get("host") or host, port), timeout=timeout):
                return ""
        except OSError as error:
            return f"tcp {port}: {error}"
    return ""  # grpc (or no handler): not run in the sandbox


def _port(value: Any, ports: Mapping[str, int], target: Obj, env: Mapping[str, str]) -> int:
    if isinstance(value, str) and not value.isdigit():
        if value not in ports:
            raise ValueError(f"no container port named {value!r}")
        port = ports[value]
    else:
        port = int(value)
    return port if target.get("host") else machine_port(port, env)


def _http(
    target: Obj, host: str, ports: Mapping[str, int], timeout: float, env: Mapping[str, str]
) -> str:
    try:
        port = _port(target.get("port"), ports, target, env)
    except ValueError as error:
        return f"http: {error}"
    address = target.get("host") or host
    path = target.get("path") or "/"
    connection: http.client.HTTPConnection
    if str(target.get("scheme", "HTTP")).upper() == "HTTPS":
        context = ssl._create_unverified_context()  # a kubelet does not verify probe certs
        connection = http.client.HTTPSConnection(address, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        headers = {h["name"]: h["value"] for h in target.get("httpHeaders") or []}
        connection.request("GET", path, headers={"User-Agent": "kube-probe/1.31", **headers})
        status = connection.getresponse().status
    except OSError as error:
        return f"http GET {address}:{port}{path}: {error}"
    finally:
        connection.close()
    return "" if 200 <= status < 400 else f"http GET {address}:{port}{path}: status {status}"


@dataclass(frozen=True)
class Failure:
    kind: Kind
    error: str
    streak: int
    """Consecutive failures so far (1: the first of a run)."""
    restart: bool
    """A startup or liveness probe at its ``failureThreshold``: the container must restart."""

    def __str__(self) -> str:
        return f"{self.kind.capitalize()} probe failed: {self.error}"


class Probes:
    """The probes of one container run, restarted with it."""

    def __init__(self, container: Obj, started_at: float):
        self.by_kind: dict[Kind, Probe] = {}
        for kind in ("startup", "liveness", "readiness"):
            spec = container.get(f"{kind}Probe")
            if spec:
                self.by_kind[kind] = Probe.from_spec(kind, spec, started_at)
        self.ports = {
            p["name"]: int(p["containerPort"])
            for p in container.get("ports") or []
            if p.get("name") and p.get("containerPort")
        }

    @property
    def started(self) -> bool:
        startup = self.by_kind.get("startup")
        return startup is None or startup.passed

    @property
    def ready(self) -> bool:
        readiness = self.by_kind.get("readiness")
        return self.started and (readiness is None or readiness.passed)

    def due(self, now: float) -> list[Probe]:
        if not self.started:
            return [p for k, p in self.by_kind.items() if k == "startup" and now >= p.next_at]
        return [p for k, p in self.by_kind.items() if k != "startup" and now >= p.next_at]

    def run(self, now: float, *, env: Mapping[str, str], host: str) -> list[Failure]:
        """Run the probes that are due; the failures, the first of them that restarts the
        container (a startup or liveness probe at its threshold) last."""
        failures = []
        for probe in self.due(now):
            error = check(probe.spec, env=env, host=host, ports=self.ports)
            at_threshold = probe.record(not error, error, now)
            if error:
                restart = at_threshold and probe.kind != "readiness"
                failures.append(Failure(probe.kind, error, probe.failures, restart))
                if restart:
                    break
        return failures
