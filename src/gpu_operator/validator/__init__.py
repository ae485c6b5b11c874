"""The node validator: proves driver, toolkit, CUDA and device plugin work on a GPU node and
writes the upstream status files in ``/run/nvidia/validations`` that gate the other operands.

``status`` (file names, atomic writes, ``driver-ready`` content) < ``waiting`` (inotify gating
with reasons) < ``running`` (the delete-validate-write pattern) < one module per component
(``driver``, ``toolkit_check``, ``workloads`` + ``kube_checks``, ``node_status``) and the
CUDA workload (``vector_add``, optional ``cuda`` extra).
"""
