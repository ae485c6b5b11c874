"""A listener that cannot bind, said in one line: which flag or variable gave the address, the
address, and why (in use, not this machine's, a privileged port), instead of the ``OSError``
traceback ``socket.bind`` raises. Every agent that binds a port or a socket raises this."""

from __future__ import annotations

import errno

from gpu_operator.errors import ConfigError

_WHY = {
    errno.EADDRINUSE: "address already in use (another process listens there)",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def cannot_listen(where: str, address: str, error: OSError) -> ConfigError:
    """The error to raise (``from error``) when binding ``address``, named by ``where`` (a
    flag or environment variable, e.g. ``--address``), failed."""
    why = _WHY.get(error.errno or 0) or (error.strerror or str(error)).lower()
    return ConfigError(f"{where} {address!r}: cannot listen there: {why}")
