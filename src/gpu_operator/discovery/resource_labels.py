"""The resource labels (pure): ``nvidia.com/gpu.*`` for full GPUs, the MIG ``single`` override
and the ``mixed`` ``nvidia.com/mig-<profile>.*`` family, with sharing's replicas, strategy and
``-SHARED`` products — upstream's ``internal/lm/resource.go`` and ``mig-strategy.go`` rules.

Beyond upstream, a node with several GPU models is labelled deterministically (upstream lets Go
map order pick, so labels flip between runs): ``nvidia.com/gpu.*`` describe the *primary
model* — the one with the most GPUs, ties broken by the sanitised name in ascending order — and
every model gets ``nvidia.com/gpu-operator.model.<n>.{product,count,memory}`` (``n`` = 0 for the
primary model, then the same order) plus ``nvidia.com/gpu-operator.models=<number of models>``.
These keys appear only on nodes with more than one model, so a homogeneous node's labels are
exactly upstream's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gpu_operator.deviceplugin.config_v1 import (
    RESOURCE_PREFIX,
    MigStrategy,
    ReplicatedResource,
    Resources,
    Sharing,
)
from gpu_operator.deviceplugin.resources import (
    SharingKind,
    gpu_resource_name,
    mig_resource_name,
)
from gpu_operator.discovery.view import GpuView, MigView, NodeView

Labels = dict[str, str]
FULL_GPU = f"{RESOURCE_PREFIX}/gpu"
OWN_PREFIX = f"{RESOURCE_PREFIX}/gpu-operator."
"""Our own label keys (beyond upstream) start with this."""

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9\-_. ]")


def sanitise(text: str) -> str:
    """Upstream's label-value sanitiser: drop characters outside ``[A-Za-z0-9-_. ]``, then join
    the whitespace-separated words with ``-`` (``Tesla T4`` → ``Tesla-T4``)."""
    return "-".join(_NOT_ALLOWED.sub("", text).split())


@dataclass(frozen=True)
class SharingRules:
    """The config's sharing section as the label rules read it."""

    strategy: SharingKind = "none"
    rules: tuple[ReplicatedResource, ...] = ()
    rename_by_default: bool = False

    @classmethod
    def of(cls, sharing: Sharing) -> SharingRules:
        # MPS wins when both are given, as upstream's ``SharingStrategy()``.
        if sharing.mps is not None:
            chosen, kind = sharing.mps, "mps"
        elif sharing.timeSlicing is not None:
            chosen, kind = sharing.timeSlicing, "time-slicing"
        else:
            return cls()
        return cls(kind, tuple(chosen.resources), chosen.renameByDefault)  # type: ignore[arg-type]

    def rule(self, advertised: str | None) -> ReplicatedResource | None:
        return next((r for r in self.rules if r.name == advertised), None)


@dataclass(frozen=True)
class _Resource:
    """One labelled resource: its label key prefix and how it is shared.

    ``sharing`` is ``None`` for MIG-enabled parents labelled as full GPUs (upstream's
    "labeler without sharing": replicas 0)."""

    key: str
    sharing: SharingRules | None
    advertised: str | None
    """The resource name the device plugin advertises these devices under (after the
    ``resources:`` renaming); sharing rules are looked up by it."""

    def label(self, suffix: str, value: object) -> tuple[str, str]:
        return f"{self.key}.{suffix}", str(value)

    @property
    def _rule(self) -> ReplicatedResource | None:
        return self.sharing.rule(self.advertised) if self.sharing is not None else None

    @property
    def replicas(self) -> int:
        if self.sharing is None:
            return 0
        rule = self._rule
        return rule.replicas if rule is not None else 1

    @property
    def shared(self) -> bool:
        return self.replicas > 1

    @property
    def renamed(self) -> bool:
        rule = self._rule
        return rule is not None and (
            bool(rule.rename) or (self.sharing is not None and self.sharing.rename_by_default)
        )

    def product(self, *parts: str) -> str:
        words = [sanitise(p) for p in parts if p]
        if self.shared and not self.renamed:
            words.append("SHARED")
        return "-".join(words)

    def base(self, count: int, *parts: str) -> Labels:
        """``product``, ``count``, ``replicas`` and ``sharing-strategy``."""
        strategy = self.sharing.strategy if self.sharing is not None and self.shared else "none"
        return dict(
            [
                self.label("product", self.product(*parts)),
                self.label("count", count),
                self.label("replicas", self.replicas),
                self.label("sharing-strategy", strategy),
            ]
        )


def _prefixed(name: str | None) -> str | None:
    return None if name is None else f"{RESOURCE_PREFIX}/{name}"


def _advertised_gpu(resources: Resources, gpu_name: str) -> str | None:
    """The device plugin's resource name for a full GPU of this model."""
    return _prefixed(gpu_resource_name(resources, gpu_name))


def _advertised_mig(resources: Resources, profile: str) -> str | None:
    return _prefixed(mig_resource_name(resources, profile))


# --- full GPUs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelGroup:
    """The GPUs of one model (one NVML name) on the node."""

    name: str
    gpus: tuple[GpuView, ...]

    @property
    def count(self) -> int:
        return len(self.gpus)

    @property
    def first(self) -> GpuView:
        return self.gpus[0]


def model_groups(gpus: Sequence[GpuView]) -> list[ModelGroup]:
    """Models in the documented order: most GPUs first, ties by sanitised name ascending."""
    names = sorted({g.name for g in gpus})
    groups = [ModelGroup(n, tuple(g for g in gpus if g.name == n)) for n in names]
    return sorted(groups, key=lambda m: (-m.count, sanitise(m.name), m.name))


def full_gpu_labels(group: ModelGroup, sharing: SharingRules, resources: Resources) -> Labels:
    """``nvidia.com/gpu.*`` for one model. A model whose GPUs all have MIG enabled is labelled
    without sharing (replicas 0), as upstream; one full GPU of the model makes it a full one."""
    full = any(not g.mig_enabled for g in group.gpus)
    gpu = group.first
    resource = _Resource(
        FULL_GPU, sharing if full else None, _advertised_gpu(resources, gpu.name) if full else None
    )
    labels = resource.base(group.count, gpu.name)
    if gpu.memory_mib:
        labels.update([resource.label("memory", gpu.memory_mib)])
    major, minor = gpu.compute_capability
    if major:
        labels.update(
            [
                resource.label("family", gpu.family),
                resource.label("compute.major", major),
                resource.label("compute.minor", minor),
            ]
        )
    return labels


def per_model_labels(groups: Sequence[ModelGroup]) -> Labels:
    """Ours: one numbered entry per model, only on a node with several models."""
    if len(groups) < 2:
        return {}
    labels = {f"{OWN_PREFIX}models": str(len(groups))}
    for n, group in enumerate(groups):
        key = f"{OWN_PREFIX}model.{n}"
        labels[f"{key}.product"] = sanitise(group.name)
        labels[f"{key}.count"] = str(group.count)
        labels[f"{key}.memory"] = str(group.first.memory_mib)
    return labels


# --- MIG strategies ---------------------------------------------------------------------------


def _mig_resource_labels(
    resource: _Resource, model: str, profile: str, migs: Sequence[MigView]
) -> Labels:
    first = migs[0]
    labels = resource.base(len(migs), model, "MIG", profile)
    labels.update(
        [
            resource.label("memory", first.memory_mb),
            resource.label("multiprocessors", first.multiprocessors),
            resource.label("slices.gi", first.gi_slices),
            resource.label("slices.ci", first.ci_slices),
            resource.label("engines.copy", first.copy_engines),
            resource.label("engines.decoder", first.decoders),
            resource.label("engines.encoder", first.encoders),
            resource.label("engines.jpeg", first.jpegs),
            resource.label("engines.ofa", first.ofas),
        ]
    )
    return labels


def _by_profile(migs: Sequence[MigView]) -> dict[str, list[MigView]]:
    out: dict[str, list[MigView]] = {}
    for mig in migs:
        out.setdefault(mig.profile, []).append(mig)
    return out


def _invalid_single(model: str, reason: str, warnings: list[str]) -> Labels:
    warnings.append(f"Invalid configuration detected for mig-strategy=single: {reason}")
    return {
        f"{FULL_GPU}.product": f"{sanitise(model)}-MIG-INVALID",
        f"{FULL_GPU}.count": "0",
        f"{FULL_GPU}.replicas": "0",
        f"{FULL_GPU}.memory": "0",
        f"{FULL_GPU}.sharing-strategy": "",
    }


def single_labels(
    view: NodeView, sharing: SharingRules, resources: Resources, warnings: list[str]
) -> Labels:
    """``single``: MIG devices are ``nvidia.com/gpu``, so ``gpu.*`` describe them; a layout the
    device plugin would refuse gets ``<model>-MIG-INVALID`` with zero counts."""
    mig_gpus = [g for g in view.gpus if g.mig_enabled]
    if not mig_gpus:
        return {}
    model = mig_gpus[0].name
    if any(not view.migs_of(g.index) for g in mig_gpus):
        return _invalid_single(model, "at least one MIG device is enabled but empty", warnings)
    if len(mig_gpus) != len(view.gpus):
        return _invalid_single(model, "devices with MIG enabled and disable detected", warnings)
    profiles = _by_profile(view.migs)
    if len(profiles) != 1:
        return _invalid_single(model, "more than one MIG device type present on node", warnings)
    ((profile, migs),) = profiles.items()
    parent = next(g for g in view.gpus if g.index == migs[0].parent_index)
    resource = _Resource(FULL_GPU, sharing, _advertised_gpu(resources, parent.name))
    return _mig_resource_labels(resource, parent.name, _profile_part(profile), migs)


def mixed_labels(view: NodeView, sharing: SharingRules, resources: Resources) -> Labels:
    """``mixed``: one ``nvidia.com/mig-<profile>.*`` family per MIG profile on the node; the
    full-GPU labels stay as they are (count = all physical GPUs, as upstream)."""
    labels: Labels = {}
    for profile, migs in _by_profile(view.migs).items():
        parent = next(g for g in view.gpus if g.index == migs[0].parent_index)
        part = _profile_part(profile)
        resource = _Resource(
            f"{RESOURCE_PREFIX}/mig-{part}", sharing, _advertised_mig(resources, profile)
        )
        labels.update(_mig_resource_labels(resource, parent.name, part, migs))
    return labels


def _profile_part(profile: str) -> str:
    """``1g.10gb+me`` → ``1g.10gb.me``: the resource spelling, valid in label keys and values."""
    return profile.replace("+", ".")


def strategy_labels(
    view: NodeView,
    strategy: MigStrategy,
    sharing: SharingRules,
    resources: Resources,
    warnings: list[str],
) -> Labels:
    """``mig.strategy`` and the strategy's resource labels; nothing for ``none``."""
    if strategy == "none":
        return {}
    labels: Labels = {f"{RESOURCE_PREFIX}/mig.strategy": strategy}
    if strategy == "single":
        labels.update(single_labels(view, sharing, resources, warnings))
    else:
        labels.update(mixed_labels(view, sharing, resources))
    return labels
