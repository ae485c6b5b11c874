"""CEL selectors as Kubernetes evaluates them: the device variable, quantity() and semver() with
their methods, unknown domains, missing attributes, non-bool results and compile errors."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.sandbox.dra.cel import CelError, compile_selector, device_variable
from gpu_operator.sandbox.dra.quantity import QuantityError, parse_quantity

DEVICE = device_variable(
    "gpu.nvidia.com",
    {
        "type": {"string": "gpu"},
        "productName": {"string": "NVIDIA H100 80GB HBM3"},
        "driverVersion": {"version": "560.35.3"},
        "index": {"int": 3},
        "vendor.example.com/healthy": {"bool": True},
    },
    {"memory": {"value": "80Gi"}, "multiprocessors": {"value": "132"}},
)


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        pytest.param("device.driver == 'gpu.nvidia.com'", True, id="driver"),
        pytest.param(
            "device.attributes['gpu.nvidia.com'].type == 'gpu'", True, id="string attribute"
        ),
        pytest.param("device.attributes['gpu.nvidia.com'].index >= 4", False, id="int attribute"),
        pytest.param("device.attributes['vendor.example.com'].healthy", True, id="qualified bool"),
        pytest.param(
            "device.attributes['other.example.com'].size() == 0", True, id="unknown domain is empty"
        ),
        pytest.param(
            "has(device.attributes['gpu.nvidia.com'].uuid)", False, id="has() of a missing one"
        ),
        pytest.param("'productName' in device.attributes['gpu.nvidia.com']", True, id="in"),
        pytest.param(
            "device.attributes['gpu.nvidia.com'].productName.startsWith('NVIDIA H100')",
            True,
            id="string method",
        ),
        pytest.param(
            "device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('40Gi')) >= 0",
            True,
            id="compareTo",
        ),
        pytest.param(
            "device.capacity['gpu.nvidia.com'].memory == quantity('81920Mi')",
            True,
            id="quantity ==",
        ),
        pytest.param(
            "device.capacity['gpu.nvidia.com'].memory.isGreaterThan(quantity('80Gi'))",
            False,
            id="isGreaterThan",
        ),
        pytest.param(
            "device.capacity['gpu.nvidia.com'].memory.isLessThan(quantity('0.1Ti'))",
            True,
            id="isLessThan",
        ),
        pytest.param(
            "device.capacity['gpu.nvidia.com'].multiprocessors.asInteger() == 132",
            True,
            id="asInteger",
        ),
        pytest.param("quantity('500m').isInteger()", False, id="isInteger"),
        pytest.param("quantity('1Gi').add(quantity('1Gi')) == quantity('2Gi')", True, id="add"),
        pytest.param("quantity('1').sub(2).sign() == -1", True, id="sub and sign"),
        pytest.param("isQuantity('1.5e3') && !isQuantity('lots')", True, id="isQuantity"),
        pytest.param(
            "device.attributes['gpu.nvidia.com'].driverVersion.isGreaterThan(semver('550.54.15'))",
            True,
            id="version attribute",
        ),
        pytest.param(
            "semver('1.2.3-rc.1').isLessThan(semver('1.2.3'))", True, id="pre-release first"
        ),
        pytest.param(
            "semver('v1.2', true).compareTo(semver('1.2.0')) == 0", True, id="normalized semver"
        ),
        pytest.param(
            "semver('2.10.0').minor() == 10 && semver('2.10.0').major() == 2", True, id="parts"
        ),
        pytest.param("isSemver('1.2') == false", True, id="isSemver strict"),
    ],
)
def test_selector(expression: str, selected: bool) -> None:
    assert compile_selector(expression).matches(DEVICE) is selected


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        pytest.param(
            "device.attributes['gpu.nvidia.com'].uuid == 'x'",
            "CEL runtime error",
            id="missing attribute",
        ),
        pytest.param(
            "device.attributes['gpu.nvidia.com'].index", "must return a bool", id="not a bool"
        ),
        pytest.param(
            "device.capacity['gpu.nvidia.com'].memory > 3",
            "CEL runtime error",
            id="quantity vs int",
        ),
        pytest.param("quantity('lots') == quantity('1')", "CEL runtime error", id="bad quantity"),
        pytest.param(
            "semver('1.2.3').compareTo(quantity('1'))", "CEL runtime error", id="mixed types"
        ),
    ],
)
def test_errors_are_errors_not_false(expression: str, problem: str) -> None:
    with pytest.raises(CelError, match=problem):
        compile_selector(expression).matches(DEVICE)


def test_a_syntax_error_fails_to_compile() -> None:
    with pytest.raises(CelError, match="compilation failed"):
        compile_selector("device.driver == ")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("40Gi", 40 * 2**30),
        ("500m", 0.5),
        ("1.5e3", 1500),
        ("2k", 2000),
        ("0.5Gi", 2**29),
        ("7", 7),
    ],
)
def test_quantities(text: str, value: float) -> None:
    assert parse_quantity(text) == value


def test_a_bad_quantity_names_it() -> None:
    with pytest.raises(QuantityError, match="'12XB'"):
        parse_quantity("12XB")


def test_devices_that_look_alike_to_an_expression_share_one_evaluation() -> None:
    # (an expression no other test compiles: selectors are shared process-wide)
    selector = compile_selector("device.attributes['gpu.nvidia.com'].profile == '1g.10gb' && true")
    for index in range(5):  # differ only in index, which the expression never reads
        attributes: dict[str, Any] = {"profile": {"string": "1g.10gb"}, "index": {"int": index}}
        assert selector.selects("gpu.nvidia.com", attributes, {})
    assert selector.selects("gpu.nvidia.com", {"profile": {"string": "2g.20gb"}}, {}) is False
    assert len(selector._memo) == 2


def test_an_expression_over_a_whole_map_is_evaluated_for_each_device() -> None:
    """Comparing or counting a whole map depends on names the expression does not spell out:
    no sharing then (each device gets its own verdict)."""
    selector = compile_selector("device.attributes['gpu.nvidia.com'] == {'type': 'gpu'}")
    assert selector.selects("gpu.nvidia.com", {"type": {"string": "gpu"}}, {})
    extra: dict[str, Any] = {"type": {"string": "gpu"}, "index": {"int": 1}}
    assert selector.selects("gpu.nvidia.com", extra, {}) is False
    counting = compile_selector("device.attributes['gpu.nvidia.com'].size() == 1")
    assert counting.selects("gpu.nvidia.com", {"type": {"string": "gpu"}}, {})
    assert counting.selects("gpu.nvidia.com", extra, {}) is False


def test_a_runtime_error_is_remembered_and_raised_again() -> None:
    selector = compile_selector("device.attributes['gpu.nvidia.com'].uuid == 'GPU-1'")
    for _ in range(2):
        with pytest.raises(CelError, match="CEL runtime error"):
            selector.selects("gpu.nvidia.com", {"type": {"string": "gpu"}}, {})
