"""dcgm-exporter's whole command line is accepted: every flag of ``pkg/cmd/app.go`` parses as
Go parses it (``-name``/``--name``, ``=value`` or the next argument, bare booleans,
``--flag=false``), a flag beats its variable, the flags this exporter has no use for are named
in one log line (the command as a process: tests/cli/exporter/test_exporter_cli.py), and the
1.x names (``1.x-compatibility-metrics.csv``, ``-o``) are served."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.exporter.collectors_csv import load_collectors
from gpu_operator.exporter.flags import FLAGS, parse
from gpu_operator.exporter.serving import Exporter
from gpu_operator.gpu import Nvml
from gpu_operator.podresources import ContainerDevices
from helpers.exporter import CSV_1X
from helpers.exporter import parse as parse_series

MakeExporter = Callable[..., tuple[Exporter, Nvml]]

# Every flag name of dcgm-exporter's app.go (4.x main), with a value it accepts.
UPSTREAM = {
    "collectors": "/etc/dcgm-exporter/default-counters.csv",
    "config-file": "/etc/dcgm-exporter/config.yaml",
    "address": ":9400",
    "web-read-timeout": "30s",
    "web-write-timeout": "30s",
    "max-concurrent-scrapes": "4",
    "enable-exporter-metrics": "true",
    "collect-interval": "30000",
    "watch-max-keep-age": "0s",
    "watch-max-keep-samples": "0",
    "kubernetes": "true",
    "use-old-namespace": "true",
    "cpu-devices": "f",
    "configmap-data": "gpu-operator:metrics",
    "remote-hostengine-info": "nv-hostengine:5555",
    "kubernetes-enable-pod-labels": "true",
    "kubernetes-enable-pod-uid": "true",
    "kubernetes-gpu-id-type": "device-name",
    "kubernetes-pod-label-allowlist-regex": "^app$",
    "devices": "g",
    "no-hostname": "true",
    "health-require-gpus": "true",
    "switch-devices": "f",
    "fake-gpus": "true",
    "web-config-file": "/etc/web.yaml",
    "xid-count-window-size": "60000",
    "replace-blanks-in-model-name": "true",
    "debug": "true",
    "clock-events-count-window-size": "60000",
    "enable-dcgm-log": "true",
    "dcgm-log-level": "INFO",
    "log-format": "json",
    "pod-resources-kubelet-socket": "/var/lib/kubelet/pod-resources/kubelet.sock",
    "hpc-job-mapping-dir": "/var/run/hpc",
    "container-labels": "true",
    "container-runtime-socket": "/run/containerd/containerd.sock",
    "nvidia-resource-names": "nvidia.com/a100",
    "kubernetes-virtual-gpus": "true",
    "dump-enabled": "true",
    "dump-directory": "/tmp/dumps",
    "dump-retention": "1",
    "dump-compression": "false",
    "kubernetes-enable-dra": "true",
    "disable-startup-validate": "true",
    "enable-gpu-bind-unbind-watch": "true",
    "gpu-bind-unbind-poll-interval": "2s",
    "enable-pprof": "true",
    "web-systemd-socket": "true",
}
SHORT = {
    "f": "collectors",
    "a": "address",
    "c": "collect-interval",
    "k": "kubernetes",
    "o": "use-old-namespace",
    "p": "cpu-devices",
    "m": "configmap-data",
    "r": "remote-hostengine-info",
    "d": "devices",
    "n": "no-hostname",
    "s": "switch-devices",
    "x": "xid-count-window-size",
    "rbmn": "replace-blanks-in-model-name",
}
BOOLS = {f.name for f in FLAGS if f.kind == "bool"}


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_every_upstream_flag_is_accepted_in_both_spellings(name: str) -> None:
    value = UPSTREAM[name]
    assert parse([f"--{name}={value}"], {}).text(name) == value
    if name in BOOLS:  # Go: a bare boolean is true; it never takes the next argument
        assert parse([f"-{name}"], {}).text(name) == "true"
    else:
        assert parse([f"-{name}", value], {}).text(name) == value


@pytest.mark.parametrize(("short", "name"), sorted(SHORT.items()))
def test_every_upstream_alias_is_accepted(short: str, name: str) -> None:
    value = UPSTREAM[name]
    assert parse([f"-{short}={value}"], {}).text(name) == value


def test_the_table_knows_no_flag_upstream_lacks_but_our_energy_interval() -> None:
    assert {f.name for f in FLAGS} - set(UPSTREAM) == {"energy-interval"}


def test_booleans_bare_or_with_a_go_word_and_the_flag_beats_the_variable() -> None:
    env = {"DCGM_EXPORTER_KUBERNETES": "true", "DCGM_EXPORTER_NO_HOSTNAME": "1"}
    given = parse(["-k=false", "-rbmn"], env)
    assert (given.flag("kubernetes"), given.flag("no-hostname")) == (False, True)
    assert given.flag("replace-blanks-in-model-name") is True
    assert given.number("collect-interval") == 30000


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--kubernetes=maybe"], {}, "--kubernetes='maybe': not a boolean"),
        ([], {"DCGM_EXPORTER_KUBERNETES": "yes"}, "DCGM_EXPORTER_KUBERNETES='yes': not a boolean"),
        (["--no-such-flag"], {}, "--no-such-flag: no such flag of dcgm-exporter"),
        (["-a"], {}, "--address: needs a value"),
        (["stray"], {}, "'stray': dcgm-exporter takes no arguments, only flags"),
    ],
)
def test_bad_input_is_one_error_naming_the_flag_or_variable(
    args: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(args, env)


def test_an_int_flag_that_is_not_a_number_is_named() -> None:
    with pytest.raises(ConfigError, match=r"--collect-interval 'soon': not an integer"):
        parse(["-c", "soon"], {}).number("collect-interval")


def test_unused_flags_given_are_named_with_why_and_defaults_are_not() -> None:
    given = parse(
        ["-r", "nv-hostengine:5555", "--kubernetes-enable-dra", "-m", "none"],
        {"KUBERNETES_VIRTUAL_GPUS": "true", "DCGM_EXPORTER_DUMP_COMPRESSION": "true"},
    )
    assert given.unused == (
        "--remote-hostengine-info=nv-hostengine:5555 (no DCGM here: NVML is read directly)",
        "KUBERNETES_VIRTUAL_GPUS (a shared GPU's series name one of its pods, not one series "
        "per pod)",
        "--kubernetes-enable-dra (needs the Kubernetes API; pod, namespace and container come "
        "from the kubelet)",
    )


def test_the_1x_names_are_served_under_their_own_names_with_the_1x_labels(
    make_exporter: MakeExporter,
) -> None:
    table = load_collectors(CSV_1X, source="1.x-compatibility-metrics.csv")
    assert table.skipped == (
        "1.x-compatibility-metrics.csv:4: skipping dcgm_pcie_tx_throughput: "
        "not measured by this exporter",
    )
    entries: list[ContainerDevices] = []
    exporter, nvml = make_exporter(
        "h200", collectors=table, use_old_namespace=True, pod_source=lambda: entries
    )
    entries.append(ContainerDevices("web-1", "apps", "srv", "nvidia.com/gpu", (nvml.gpu(0).uuid,)))
    exporter.step()
    exporter.refresh_pods()
    series = parse_series(exporter.body)
    assert set(series) >= {"dcgm_sm_clock", "dcgm_gpu_temp", "dcgm_power_usage", "dcgm_fb_used"}
    labels, value = series["dcgm_gpu_temp"][0]
    assert labels["uuid"] == nvml.gpu(0).uuid
    assert "UUID" not in labels
    assert (labels["pod_name"], labels["pod_namespace"], labels["container_name"]) == (
        "web-1",
        "apps",
        "srv",
    )
    assert value > 0
    assert not any(name.startswith("DCGM_FI_") for name in series)


def test_pod_uid_and_allowlisted_labels_come_from_the_api_server_onto_the_pod_s_series(
    make_exporter: MakeExporter,
) -> None:
    from lightkube.models.core_v1 import Container, PodSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace, Pod

    from gpu_operator.exporter.pod_metadata import ApiPodMeta
    from gpu_operator.kube import KubeSettings, build_client
    from gpu_operator.sandbox.apiserver import ApiServer, ServerThread

    with ServerThread(ApiServer()) as thread:
        client = build_client(KubeSettings(server=thread.url))
        client.create(Namespace(metadata=ObjectMeta(name="ml")))
        labels = {"app.kubernetes.io/name": "trainer", "team": "vision", "app": "t"}
        created = client.create(
            Pod(
                metadata=ObjectMeta(name="trainer-0", namespace="ml", labels=labels),
                spec=PodSpec(containers=[Container(name="main", image="i")]),
            )
        )
        entries: list[ContainerDevices] = []
        pod_meta = ApiPodMeta(KubeSettings(server=thread.url))
        exporter, nvml = make_exporter(
            "h200",
            pod_source=lambda: entries,
            pod_meta=pod_meta,
            kubernetes=True,
            kubernetes_enable_pod_uid=True,
            kubernetes_enable_pod_labels=True,
            kubernetes_pod_label_allowlist_regex=("^app",),
        )
        entries.append(
            ContainerDevices("trainer-0", "ml", "main", "nvidia.com/gpu", (nvml.gpu(0).uuid,))
        )
        try:
            exporter.step()
            exporter.refresh_pods()
        finally:
            pod_meta.close()
            client.close()
    labels_on_series, _ = parse_series(exporter.body)["DCGM_FI_DEV_GPU_TEMP"][0]
    assert labels_on_series["pod"] == "trainer-0"
    assert labels_on_series["pod_uid"] == created.metadata.uid
    assert labels_on_series["app_kubernetes_io_name"] == "trainer"
    assert labels_on_series["app"] == "t"
    assert "team" not in labels_on_series, "not in the allowlist"


def test_a_bad_allowlist_pattern_is_refused_naming_the_flag() -> None:
    from gpu_operator.exporter.settings import ExporterSettings

    with pytest.raises(ConfigError, match=r"--kubernetes-pod-label-allowlist-regex '\(': "):
        ExporterSettings(kubernetes_pod_label_allowlist_regex=("(",))
