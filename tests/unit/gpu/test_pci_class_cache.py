"""The PCI class is read from NVML once per device and session (``nvmlDeviceGetPciInfoExt``
costs ~1.5 ms on real cards; the class does not change while the driver is loaded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpu_operator.gpu import Nvml


def count_pci_info_ext(nvml: Nvml, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Handles passed to the simulator's ``nvmlDeviceGetPciInfoExt``, which still answers."""
    calls: list[Any] = []
    real = nvml.nvml.nvmlDeviceGetPciInfoExt

    def counted(handle: Any, info: Any) -> Any:
        calls.append(handle)
        return real(handle, info)

    monkeypatch.setattr(nvml.nvml, "nvmlDeviceGetPciInfoExt", counted)
    return calls


def test_the_pci_class_is_read_once_per_device_and_session(
    open_sim: Callable[..., Nvml], monkeypatch: pytest.MonkeyPatch
) -> None:
    nvml = open_sim("dgx-a100")
    calls = count_pci_info_ext(nvml, monkeypatch)
    first = [g.pci_class for g in nvml.gpus()]
    assert first == [0x0302] * 8  # 3D controller, as the A100 reports it
    for _ in range(3):
        assert nvml.gpu(0).pci_class == 0x0302
        nvml.topology(0, 7)
    assert [g.pci_class for g in nvml.gpus()] == first
    assert len(calls) == 8, "one read per GPU, then the session's cache"


def test_a_new_session_reads_the_class_again(
    open_sim: Callable[..., Nvml], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = open_sim("h200")
    assert first.gpu(0).pci_class == 0x0302
    first.close()
    second = open_sim("h200")
    calls = count_pci_info_ext(second, monkeypatch)
    assert second.gpu(0).pci_class == 0x0302
    assert len(calls) == 1
