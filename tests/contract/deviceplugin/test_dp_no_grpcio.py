"""The device plugin serves the kubelet without grpcio (issue 15): a real process registers with
the kubelet stand-in (grpcio), streams its devices, answers a pod's Allocate and
GetPreferredAllocation, and at SIGTERM has loaded no ``grpc`` module; an Allocate reply larger
than HTTP/2's flow-control window arrives whole; the kubelet's cancel ends the plugin's stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.deviceplugin.plugin import DevicePlugin
from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb
from gpu_operator.sandbox.kubelet import Kubelet

pytestmark = pytest.mark.timeout(30)
StartPlugin = Callable[..., DevicePlugin]

WRAPPER = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
from gpu_operator.cli import main
main()
"""


def test_a_serving_device_plugin_loads_no_grpc_module(kubelet: Kubelet, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env.update(
        GPU_OPERATOR_SIM="a30x4",
        GPU_OPERATOR_SIM_ROOT=os.environ["GPU_OPERATOR_SIM_ROOT"],
        KUBELET_SOCKET=str(kubelet.socket),
        MODULES_OUT=str(tmp_path / "out.json"),
    )
    process = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, "device-plugin"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 4, 20)
        pod = kubelet.admit_pod("p", [("c", {"nvidia.com/gpu": 2})])
        response = pod.containers[0].responses["nvidia.com/gpu"]
        assert response.envs["NVIDIA_VISIBLE_DEVICES"].count("GPU-") == 2
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    modules = json.loads((tmp_path / "out.json").read_text())
    assert "gpu_operator.grpc_h2.server" in modules, stderr
    assert [m for m in modules if m == "grpc" or m.startswith("grpc.")] == []


def stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "dp-nvidia-gpu.sock-stream"]


def test_an_allocate_reply_past_the_http2_window_reaches_grpcio_whole(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    start_plugin("a30x4")
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 4)
    ids = kubelet.state("nvidia.com/gpu").healthy_ids()
    one = pb.ContainerAllocateRequest(devices_ids=ids)
    request = pb.AllocateRequest(container_requests=[one] * 2000)
    reply = kubelet.state("nvidia.com/gpu").stub.Allocate(request, timeout=20)
    assert reply.ByteSize() > 4 * 65535
    assert len(reply.container_responses) == 2000
    for response in reply.container_responses:
        assert sorted(response.envs["NVIDIA_VISIBLE_DEVICES"].split(",")) == sorted(ids)


def test_the_kubelets_cancel_ends_the_plugins_stream(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    start_plugin("a30x4")
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 4)
    assert stream_threads() == ["dp-nvidia-gpu.sock-stream"]
    kubelet.manager.disconnect_all()  # cancels its ListAndWatch (RST_STREAM)
    for thread in threading.enumerate():
        if thread.name == "dp-nvidia-gpu.sock-stream":
            thread.join(10)
    assert stream_threads() == []
