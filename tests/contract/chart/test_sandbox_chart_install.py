"""Installing the chart into the sandbox: the real helm renders it; hooks stay out; CRDs first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox import chart
from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.rest import Rest


@pytest.fixture
def helm_present() -> None:
    try:
        chart.find_helm()
    except ConfigError:
        pytest.skip("helm is not installed (make test fetches .tools/helm)")


@pytest.fixture
def rest(server_thread: ServerThread) -> Iterator[Rest]:
    client = Rest(server_thread.url)
    yield client
    client.close()


@pytest.mark.usefixtures("helm_present")
def test_the_rendered_chart_carries_the_set_values_and_no_hooks() -> None:
    objects = chart.render(["driver.version=450.156.00", "mig.strategy=mixed"])
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "Deployment", "ClusterPolicy"} <= kinds
    assert not any("helm.sh/hook" in (o["metadata"].get("annotations") or {}) for o in objects)
    [policy] = [o for o in objects if o["kind"] == "ClusterPolicy"]
    assert policy["spec"]["driver"]["version"] == "450.156.00"
    assert policy["spec"]["mig"]["strategy"] == "mixed"


@pytest.mark.usefixtures("helm_present")
def test_install_applies_every_object_so_the_policy_is_served_after_its_crd(rest: Rest) -> None:
    applied = chart.install(rest, chart.render([]))
    assert applied[0].startswith("CustomResourceDefinition/")
    assert rest.get("nvidia.com/v1/clusterpolicies", "cluster-policy") is not None
    assert rest.get("deployments", "gpu-operator", "gpu-operator") is not None


def test_a_bad_value_is_one_clear_error_from_helm(helm_present: None) -> None:
    with pytest.raises(ConfigError, match="helm template failed"):
        chart.render(["mig.strategy=diagonal"])
