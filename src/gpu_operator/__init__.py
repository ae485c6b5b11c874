"""gpu-operator: a drop-in compatible NVIDIA GPU operator for Kubernetes, written in Python."""

__version__ = "0.1.0"
