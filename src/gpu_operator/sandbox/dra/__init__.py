"""Dynamic Resource Allocation in the sandbox: the scheduler side of ``resource.k8s.io/v1``.

``quantity`` and ``cel`` evaluate the CEL selectors of DeviceClasses and ResourceClaims,
``inventory`` turns ResourceSlices into devices and counters, ``allocator`` picks devices for a
pod's claims (pure: no I/O), ``claims`` holds the resourceclaim controller's rules (names, owner,
reservations), ``plugin`` wires them to the API server for the sandbox scheduler, and
``classes`` ships the DeviceClasses NVIDIA's DRA driver installs."""
