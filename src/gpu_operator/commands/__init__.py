"""Subcommands of the gpu-operator CLI, one module per command group."""
