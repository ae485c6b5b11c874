"""Fixtures of the runtime shim's container tests (their helpers live in ``shim_nodes``)."""

from helpers.shim_nodes import rootfs, shim_binary

__all__ = ["rootfs", "shim_binary"]
