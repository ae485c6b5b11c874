"""``spec.driver.upgradePolicy`` → the driver upgrade controller's ``UpgradePolicy``: upstream's
defaults for what the policy leaves out, and each bad value a ``ConfigError`` naming its field.
The operator's model meets the driver's here, so ``driver/`` never imports the operator."""

from __future__ import annotations

from gpu_operator.driver.upgrade_model import SOURCE, UpgradePolicy, resolve_max_unavailable
from gpu_operator.errors import ConfigError
from gpu_operator.labelselectors import parse_selector
from gpu_operator.operator.policy_v1 import DriverUpgradePolicySpec


def upgrade_policy(spec: DriverUpgradePolicySpec | None) -> UpgradePolicy:
    """The policy the upgrade controller runs with (all defaults when ``spec`` is ``None``)."""
    if spec is None:
        return UpgradePolicy()
    deletion, wait, drain = spec.podDeletion, spec.waitForCompletion, spec.drain
    max_unavailable = spec.maxUnavailable if spec.maxUnavailable is not None else "25%"
    resolve_max_unavailable(max_unavailable, 1)  # fail early, naming the field
    return UpgradePolicy(
        auto_upgrade=spec.autoUpgrade if spec.autoUpgrade is not None else True,
        max_parallel=_non_negative(spec.maxParallelUpgrades, 1, "maxParallelUpgrades"),
        max_unavailable=max_unavailable,
        wait_selector=(
            parse_selector(wait.podSelector, source=f"{SOURCE}.waitForCompletion.podSelector")
            if wait and wait.podSelector
            else None
        ),
        wait_timeout_s=_non_negative(
            wait.timeoutSeconds if wait else None, 0, "waitForCompletion.timeoutSeconds"
        ),
        pod_deletion_force=bool(deletion and deletion.force),
        pod_deletion_timeout_s=_non_negative(
            deletion.timeoutSeconds if deletion else None, 300, "podDeletion.timeoutSeconds"
        ),
        pod_deletion_empty_dir=bool(deletion and deletion.deleteEmptyDir),
        drain_enable=bool(drain and drain.enable),
        drain_force=bool(drain and drain.force),
        drain_selector=parse_selector(
            drain.podSelector if drain else None, source=f"{SOURCE}.drain.podSelector"
        ),
        drain_timeout_s=_non_negative(
            drain.timeoutSeconds if drain else None, 300, "drain.timeoutSeconds"
        ),
        drain_empty_dir=bool(drain and drain.deleteEmptyDir),
    )


def _non_negative(value: int | None, default: int, name: str) -> int:
    if value is None:
        return default
    if value < 0:
        raise ConfigError(f"{SOURCE}.{name}: must be 0 or more, not {value}")
    return value
