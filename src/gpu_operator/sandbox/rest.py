"""A small JSON client for the sandbox's own controllers (the simulated kubelets, DaemonSet
controller and scheduler): the handful of REST verbs they need against the API server emulator,
over plain HTTP with one kept-alive connection per thread. Agents and the operator use
``gpu_operator.kube``; the sandbox plays the control plane and talks to the API as one."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from typing import Any

from gpu_operator.errors import KubeError

Obj = dict[str, Any]

_CORE = {"pods", "nodes", "configmaps", "events", "namespaces", "services", "secrets"}


class ApiError(KubeError):
    """A request the API server answered with an error status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def path_for(resource: str, namespace: str | None = None, name: str | None = None) -> str:
    """``pods`` → ``/api/v1/…``, ``daemonsets`` → ``/apis/apps/v1/…``; others are named
    ``group/version/plural`` (``v1/plural`` for the core group)."""
    if resource in _CORE:
        base = "/api/v1"
    elif resource in ("daemonsets", "deployments", "replicasets", "controllerrevisions"):
        base = "/apis/apps/v1"
    elif resource.startswith("v1/"):
        base, resource = "/api/v1", resource[3:]
    elif "/" in resource:
        group_version, resource = resource.rsplit("/", 1)
        base = f"/apis/{group_version}"
    else:
        raise KubeError(f"sandbox client: unknown resource {resource!r}")
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(resource)
    if name:
        parts.append(name)
    return "/".join(parts)


class Rest:
    def __init__(self, url: str, *, timeout_s: float = 10.0):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._every: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self._local.conn = conn
            with self._lock:
                self._every.append(conn)
        return conn

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):  # one reconnect: the server may have closed a kept-alive socket
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                self._local.conn = None
                if attempt:
                    raise KubeError(f"{method} {path}: {error}") from error
        if response.status >= 400:
            try:
                message = json.loads(raw).get("message", raw.decode(errors="replace"))
            except ValueError:
                message = raw.decode(errors="replace")
            raise ApiError(response.status, f"{method} {path}: {response.status} {message}")
        return json.loads(raw) if raw else None

    # --- verbs ---------------------------------------------------------------------------

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            result: Obj = self.request("GET", path_for(resource, namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return result

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        labels: str = "",
        fields: str = "",
    ) -> list[Obj]:
        query = urllib.parse.urlencode(
            {k: v for k, v in (("labelSelector", labels), ("fieldSelector", fields)) if v}
        )
        path = path_for(resource, namespace) + (f"?{query}" if query else "")
        items: list[Obj] = self.request("GET", path).get("items") or []
        return items

    def create(self, resource: str, body: Obj, namespace: str | None = None) -> Obj:
        result: Obj = self.request("POST", path_for(resource, namespace), body)
        return result

    def patch(
        self,
        resource: str,
        name: str,
        patch: Obj,
        namespace: str | None = None,
        *,
        subresource: str = "",
    ) -> Obj:
        path = path_for(resource, namespace, name) + (f"/{subresource}" if subresource else "")
        result: Obj = self.request("PATCH", path, patch, "application/merge-patch+json")
        return result

    def apply(self, resource: str, body: Obj, namespace: str | None = None) -> Obj:
        name = body["metadata"]["name"]
        path = path_for(resource, namespace, name) + "?fieldManager=sandbox&force=true"
        result: Obj = self.request("PATCH", path, body, "application/apply-patch+yaml")
        return result

    def delete(
        self,
        resource: str,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_s: int | None = None,
    ) -> bool:
        path = path_for(resource, namespace, name)
        if grace_period_s is not None:
            path += f"?gracePeriodSeconds={grace_period_s}"
        try:
            self.request("DELETE", path)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            every, self._every = self._every, []
        for conn in every:
            conn.close()
