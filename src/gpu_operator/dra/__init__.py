"""The DRA kubelet plugin (``gpu-operator dra-driver``): NVIDIA's ``gpu.nvidia.com`` driver of
``k8s-dra-driver-gpu``, for full GPUs.

It registers with the kubelet's plugin watcher (``pluginregistration`` ``GetInfo`` on
``<plugins_registry>/gpu.nvidia.com-reg.sock``), serves the kubelet's DRA v1 service
(``NodePrepareResources``/``NodeUnprepareResources`` on ``<plugins>/gpu.nvidia.com/dra.sock``),
publishes the node's GPUs as one ResourceSlice and prepares a claim by writing a CDI spec for
exactly its devices. The parts, by role:

- ``devices``: a GPU as a ResourceSlice device (upstream's names and attributes) — pure;
- ``slices``: the node's ResourceSlice, device taints from health — pure;
- ``cdi``: a claim's CDI spec through the toolkit's generator — pure;
- ``claims``: which devices of an allocated ResourceClaim are ours — pure;
- ``checkpoint``: prepared claims on disk, so a restart still knows them;
- ``prepare``: prepare/unprepare, idempotent, over a claim source;
- ``sharing_config``: upstream's opaque ``GpuConfig``/``MigDeviceConfig``, decoded and matched to
  a claim's devices — pure;
- ``sharing``: time-slicing and MPS applied on prepare, undone on unprepare;
- ``health``: the device plugin's XID rules, remembering which XID hit a device;
- ``servicer``, ``server``: the gRPC services and their sockets;
- ``settings``: upstream's flags and variables through the settings engine;
- ``kubeapi``: the API shell (ResourceClaims read, ResourceSlices written);
- ``plugin``: the whole driver assembled.

``mig_*``: dynamic MIG (feature gate ``DynamicMIG``): ``mig_devices`` the devices and counters
of one GPU, ``mig_placement`` the device preference, ``mig_prepare`` an instance made and
destroyed, ``mig_node`` the node's MIG GPUs in the driver, ``mig_published`` GPUs read back from
slices (for a scheduler), ``mig_claims`` pending claims' demand. See docs/dra.md.
"""

from __future__ import annotations

DRIVER_NAME = "gpu.nvidia.com"
"""The DRA driver name (upstream ``DriverName``): ResourceSlices, claims' results, sockets."""
DRA_SERVICE = "v1.DRAPlugin"
"""What a plugin lists in ``supported_versions`` for the v1 DRAPlugin service (kubelet's
``drapbv1.DRAPluginService``)."""
PLUGIN_TYPE = "DRAPlugin"
"""The plugin watcher's type for DRA plugins (``pluginregistration.DRAPlugin``)."""
