"""The sandbox installs the chart with ``driver.nvidiaDriverCRD.enabled=true``: both CRDs go in
first, then the default NVIDIADriver the chart renders, served by the sandbox's API server (it
refused the kind before, so the documented flag could not be tried there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox import chart
from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.rest import Rest


@pytest.fixture
def rest(server_thread: ServerThread) -> Iterator[Rest]:
    try:
        chart.find_helm()
    except ConfigError:
        pytest.skip("helm is not installed (make test fetches .tools/helm)")
    client = Rest(server_thread.url)
    yield client
    client.close()


def test_the_default_nvidiadriver_is_installed_after_both_crds(rest: Rest) -> None:
    applied = chart.install(rest, chart.render(["driver.nvidiaDriverCRD.enabled=true"]))
    crds = [a for a in applied if a.startswith("CustomResourceDefinition/")]
    assert set(crds) == {
        "CustomResourceDefinition/clusterpolicies.nvidia.com",
        "CustomResourceDefinition/nvidiadrivers.nvidia.com",
    }
    assert applied.index("NVIDIADriver/default") > max(applied.index(c) for c in crds)
    default = rest.get("nvidia.com/v1alpha1/nvidiadrivers", "default")
    assert default is not None
    assert default["spec"]["default"] is True
    policy = rest.get("nvidia.com/v1/clusterpolicies", "cluster-policy")
    assert policy is not None
    assert policy["spec"]["driver"]["useNvidiaDriverCRD"] is True
