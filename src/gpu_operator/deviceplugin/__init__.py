"""The NVIDIA device plugin: advertise GPUs and MIG devices to the kubelet, allocate them,
watch their health.

Model: ``config_v1`` (the config file), ``settings`` (flags > env > file). Pure core:
``resources`` (strategies, sharing), ``allocation``, ``preferred``, the event rules in
``health``. Adapters: ``devnodes`` (device nodes), ``servicer`` (gRPC translation),
``supervisor`` (sockets, registration, kubelet restarts), ``plugin`` (assembly over NVML).
"""
