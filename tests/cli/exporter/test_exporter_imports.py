"""What a serving exporter's process holds: no CLI framework (typer, click) and no stdlib HTTP
server (``http.server`` and what it drags in: ``email``, ``html``, ``http.client``, ``ssl``),
whether it was started as ``dcgm-exporter`` (the installed console script's entry point) or as
``gpu-operator [--sim X] exporter``. ``ssl`` comes in only when the web config asks for TLS.
issue 15: these cost the exporter ~11 MiB and 75 ms of its start on an H100."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from helpers.polling import wait_until

UNWANTED = ("typer", "click", "http.server", "http.client", "email", "html", "ssl", "rich")

# Runs one console script's entry point (``module:function``, read here from the installed
# metadata) as its installed wrapper does, and writes the loaded modules' names at exit.
WRAPPER = """
import atexit, importlib, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
script, target, args = sys.argv[1], sys.argv[2], sys.argv[3:]
module, function = target.split(":")
sys.argv = [script, *args]
getattr(importlib.import_module(module), function)()
"""


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def modules_while_serving(
    tmp_path: Path, script: str, *args: str, also: Callable[[], bool] = lambda: True
) -> set[str]:
    """The modules of ``script ARGS`` once it serves metrics and ``also()`` holds (waited
    for), stopped with SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env.update(
        GPU_OPERATOR_SIM="h200",
        GPU_OPERATOR_SIM_ROOT=str(tmp_path / "sim"),
        MODULES_OUT=str(tmp_path / "modules.json"),
    )
    (entry,) = entry_points(group="console_scripts", name=script)
    process = subprocess.Popen(
        [sys.executable, "-c", WRAPPER, script, entry.value, *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "serving metrics on" in line:
                break
        else:
            pytest.fail(f"{script} exited before serving: {''.join(lines)}")
        assert wait_until(also)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # never outlive the test, even when it ignored SIGTERM
            process.communicate()
            raise
    assert process.returncode == 0
    return set(json.loads((tmp_path / "modules.json").read_text()))


def test_the_dcgm_exporter_console_script_serves_without_typer_or_http_server(
    tmp_path: Path,
) -> None:
    (entry,) = entry_points(group="console_scripts", name="dcgm-exporter")
    assert entry.value == "gpu_operator.cli:dcgm_exporter"  # what the wrapper above runs
    modules = modules_while_serving(tmp_path, "dcgm-exporter", "-a", "127.0.0.1:0")
    assert "gpu_operator.exporter.httpd" in modules
    assert loaded(modules, UNWANTED) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("exporter",), id="gpu-operator exporter"),
        pytest.param(("--sim", "h200", "exporter"), id="gpu-operator --sim h200 exporter"),
        pytest.param(("--sim=h200", "exporter"), id="gpu-operator --sim=h200 exporter"),
    ],
)
def test_gpu_operator_exporter_serves_without_typer_or_http_server(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    modules = modules_while_serving(tmp_path, "gpu-operator", *args, "-a", "127.0.0.1:0")
    assert "gpu_operator.exporter.serving" in modules
    assert loaded(modules, UNWANTED) == []


def test_the_exporter_s_help_still_comes_from_typer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    result = subprocess.run(
        [sys.executable, "-c", "from gpu_operator.cli import main; main()", "exporter", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: gpu-operator exporter [OPTIONS]")
    assert "--collect-interval (-c) [DCGM_EXPORTER_INTERVAL]" in result.stdout


def test_the_exporter_with_k_lists_pod_resources_without_grpc(tmp_path: Path) -> None:
    """``-k``: the kubelet's PodResources List is read (the stand-in here is a grpcio server in
    this test's process) with no grpcio or protobuf runtime in the exporter's (~20 MiB)."""
    import grpc

    from gpu_operator.protos import podresources_v1_pb2 as api
    from gpu_operator.protos.grpc_api import (
        PodResourcesListerServicerBase,
        add_pod_resources_servicer,
    )

    called = threading.Event()

    class Lister(PodResourcesListerServicerBase):
        def List(self, request: Any, context: Any) -> Any:
            called.set()
            return api.ListPodResourcesResponse()

    socket = tmp_path / "kubelet.sock"
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    add_pod_resources_servicer(Lister(), server)
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    try:
        modules = modules_while_serving(
            tmp_path,
            "dcgm-exporter",
            "-a",
            "127.0.0.1:0",
            "-k",
            "--pod-resources-kubelet-socket",
            str(socket),
            also=called.is_set,
        )
    finally:
        server.stop(grace=None).wait(5)
    assert "h2.connection" in modules  # the List call ran in the exporter
    assert loaded(modules, ("grpc", "google.protobuf", *UNWANTED)) == []
