"""Driver pools: which driver DaemonSets a cluster needs — GPU nodes grouped by the driver build
their OS maps to (and by kernel for precompiled drivers), each pool with its DaemonSet name, exact
image, and a node selection on the NFD OS labels — and which old pools to delete.

Pure and deterministic: the result depends on the set of nodes, never on list order (upstream
took the OS of "the first GPU node", #328/#2471). The tag rule and alias table are
``driver.images``'s; the base image comes resolved from the operator; this module only groups.

Names (reference §3.4–§3.5): one pool keeps upstream's ``nvidia-driver-daemonset``; several get
``nvidia-driver-daemonset-<ostag>``; precompiled pools are always
``nvidia-driver-daemonset-<kernel>-<ostag>`` (kernel without arch, ``_`` → ``.``, lowercased).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gpu_operator.driver.images import NodeOs, driver_image, os_tag, precompiled_image
from gpu_operator.errors import ConfigError
from gpu_operator.names import PRECOMPILED_LABEL as PRECOMPILED
from gpu_operator.nfd import KERNEL_LABEL, OS_ID_LABEL, OS_VERSION_LABEL, has_nvidia_gpu

DAEMONSET = "nvidia-driver-daemonset"
PRECOMPILED_LABEL = PRECOMPILED
_ARCH = re.compile(r"[.-](x86_64|aarch64|amd64|arm64)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_MAX_NAME = 63  # the DaemonSet name is also the ``app`` label value


class PoolNode(Protocol):
    """What a pool needs of a node (the operator's ``NodeFacts`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def os(self) -> NodeOs | None: ...
    @property
    def kernel(self) -> str | None: ...


@dataclass(frozen=True)
class DriverPool:
    """One driver DaemonSet: its name, image, the nodes it serves and how it selects them.

    ``node_selector`` holds what every node of the pool shares (the kernel for precompiled, and
    the OS ID and VERSION_ID when they are the same everywhere); ``os_versions`` lists every
    (ID, VERSION_ID) of the pool, for ``node_affinity`` when one selector cannot say it.
    """

    name: str
    image: str
    os_tag: str
    kernel: str | None
    os_family: str
    """The node OS ID (before aliasing) of the pool's first OS: picks apt- or yum-style paths."""
    os_versions: tuple[NodeOs, ...]
    nodes: tuple[str, ...]
    node_selector: Mapping[str, str]
    precompiled: bool = False

    def node_affinity(self) -> dict[str, Any] | None:
        """A required node affinity with one term per (ID, VERSION_ID) — terms are ORed, so a
        pool of Rocky 8.5 and 8.10 never matches a Rocky 9 node. ``None`` when the selector says
        it all."""
        if OS_ID_LABEL in self.node_selector:
            return None
        terms = []
        for os in self.os_versions:
            expressions = [
                {"key": OS_ID_LABEL, "operator": "In", "values": [os.id]},
                {"key": OS_VERSION_LABEL, "operator": "In", "values": [os.version_id]},
            ]
            if self.kernel is not None:
                expressions.append({"key": KERNEL_LABEL, "operator": "In", "values": [self.kernel]})
            terms.append({"matchExpressions": expressions})
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
            }
        }

    def labels(self) -> dict[str, str]:
        """Extra labels of the pool's DaemonSet (and pods): ``nvidia.com/precompiled``."""
        return {PRECOMPILED_LABEL: "true"} if self.precompiled else {}


def sanitize_kernel(kernel: str) -> str:
    """``5.14.0-427.13.1.el9_4.x86_64`` → ``5.14.0-427.13.1.el9.4`` (upstream's DS name part)."""
    return _ARCH.sub("", kernel).replace("_", ".").lower()


def _os_of(node: PoolNode) -> NodeOs:
    os = node.os
    if os is None:
        raise ConfigError(
            f"GPU node {node.name}: no OS labels ({OS_ID_LABEL}, {OS_VERSION_LABEL}); "
            "is node-feature-discovery running on it? The driver image tag needs them"
        )
    return os


def _check_name(name: str, why: str) -> str:
    if len(name) > _MAX_NAME or not _DNS_LABEL.match(name):
        raise ConfigError(
            f"driver DaemonSet name {name!r} ({why}) is not a valid label value "
            f"(at most {_MAX_NAME} characters of a-z, 0-9, '-', '.')"
        )
    return name


def _selector(oses: set[NodeOs], kernel: str | None) -> dict[str, str]:
    selector: dict[str, str] = {KERNEL_LABEL: kernel} if kernel is not None else {}
    if len(oses) == 1:
        (only,) = oses
        selector[OS_ID_LABEL] = only.id
        selector[OS_VERSION_LABEL] = only.version_id
    return selector


def plan_pools(
    nodes: Iterable[PoolNode],
    base_image: str,
    *,
    precompiled: bool = False,
    aliases: Mapping[str, str] | None = None,
) -> tuple[DriverPool, ...]:
    """The driver pools for the GPU nodes among ``nodes`` (the gpu.present label true, or
    NFD's NVIDIA PCI labels on a node the operator has not labelled yet).

    ``base_image`` is the resolved driver image without the OS suffix (``repo/driver:595.91.07``,
    or ``repo/driver:580`` — the branch — for precompiled). A GPU node without OS labels (or,
    precompiled, without a kernel label) is a ``ConfigError`` naming the node and the label.
    Sorted by name.
    """
    groups: dict[tuple[str, str | None], tuple[set[NodeOs], set[str]]] = {}
    for node in nodes:
        if not has_nvidia_gpu(node.labels):
            continue
        os = _os_of(node)
        kernel: str | None = None
        if precompiled:
            kernel = node.kernel
            if not kernel:
                raise ConfigError(
                    f"GPU node {node.name}: driver.usePrecompiled needs the {KERNEL_LABEL} label"
                )
        oses, names = groups.setdefault((os_tag(os, aliases), kernel), (set(), set()))
        oses.add(os)
        names.add(node.name)
    pools = []
    for (tag, kernel), (oses, names) in groups.items():
        first = min(oses)
        if kernel is not None:
            name = _check_name(f"{DAEMONSET}-{sanitize_kernel(kernel)}-{tag}", f"kernel {kernel}")
            image = precompiled_image(base_image, kernel, first, aliases)
        else:
            name = DAEMONSET if len(groups) == 1 else _check_name(f"{DAEMONSET}-{tag}", tag)
            image = driver_image(base_image, first, aliases)
        pools.append(
            DriverPool(
                name=name,
                image=image,
                os_tag=tag,
                kernel=kernel,
                os_family=first.id.lower(),
                os_versions=tuple(sorted(oses)),
                nodes=tuple(sorted(names)),
                node_selector=_selector(oses, kernel),
                precompiled=kernel is not None,
            )
        )
    return tuple(sorted(pools, key=lambda p: p.name))


# An NVIDIADriver CR's DaemonSets: ``nvidia-<driverType>-driver-<cr>-<ostag>`` (upstream's
# ``nvidia-<driverType>-driver-`` prefix).
CR_DAEMONSET = re.compile(r"^nvidia-(gpu|vgpu|vgpu-host-manager)-driver-")


def is_driver_pool(name: str) -> bool:
    """A driver DaemonSet name: the ClusterPolicy's pools or an NVIDIADriver CR's."""
    return name == DAEMONSET or name.startswith(f"{DAEMONSET}-") or bool(CR_DAEMONSET.match(name))


def stale_pools(existing: Iterable[str], pools: Iterable[DriverPool]) -> list[str]:
    """Driver DaemonSets that exist (names of the operator's own) but no pool wants: delete them
    before the new ones are applied, as upstream does. Sorted."""
    wanted = {p.name for p in pools}
    return sorted({n for n in existing if is_driver_pool(n) and n not in wanted})
