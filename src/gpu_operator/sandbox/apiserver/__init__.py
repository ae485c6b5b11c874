"""The Kubernetes API server emulator: an in-memory, asyncio HTTP server on 127.0.0.1 that
``lightkube``, ``kopf`` and the real ``kubectl`` accept (see docs/sandbox-apiserver.md)."""

from gpu_operator.sandbox.apiserver.kubeconfig import write_kubeconfig
from gpu_operator.sandbox.apiserver.server import ApiServer, ServerThread

__all__ = ["ApiServer", "ServerThread", "write_kubeconfig"]
