"""The emulator's ``/version`` says 1.37 unless ``GPU_OPERATOR_SANDBOX_KUBERNETES_VERSION``
names another (``1.33``, ``v1.34.2``); a value that is not a version is one error naming the
variable."""

from __future__ import annotations

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox.apiserver.discovery import VERSION_ENV, version_info


def test_without_the_variable_it_is_1_37(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VERSION_ENV, raising=False)
    info = version_info()
    assert (info["major"], info["minor"]) == ("1", "37")
    assert info["gitVersion"].startswith("v1.37.0")


@pytest.mark.parametrize(("value", "minor"), [("1.33", "33"), ("v1.34.2", "34")])
def test_the_variable_names_the_version(
    monkeypatch: pytest.MonkeyPatch, value: str, minor: str
) -> None:
    monkeypatch.setenv(VERSION_ENV, value)
    info = version_info()
    assert (info["major"], info["minor"]) == ("1", minor)
    assert info["gitVersion"].startswith(f"v1.{minor}.0")


def test_a_value_that_is_not_a_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VERSION_ENV, "latest")
    with pytest.raises(ConfigError, match=f"^{VERSION_ENV}='latest': not a Kubernetes version"):
        version_info()
