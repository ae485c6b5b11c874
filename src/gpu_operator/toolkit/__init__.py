"""The container toolkit: configures containerd, CRI-O or Docker to run GPU containers
(runtimes ``nvidia``, ``nvidia-cdi``, ``nvidia-legacy``), reversibly, and writes CDI specs.

Model and pure core: ``settings``, ``documents`` (edits as data), one module per runtime config
format (``containerd_config``, ``crio_config``, ``docker_daemon``), ``cdi_spec`` +
``cdi_generate``. Adapters: ``host_files`` (atomic write, backup, restore), ``restart``,
``capabilities``, ``driver_tree``; ``install`` ties them together.
"""
