"""Time-slicing through the device plugin's ConfigMap, end to end on the sandbox: the
config-manager init container and sidecar pick each node's config by its
nvidia.com/device-plugin.config label, and the plugin advertises each GPU `replicas` times."""

from __future__ import annotations

from pathlib import Path

from gpu_operator.sandbox.demo import NAMESPACE, story_blockers
from helpers.story import NODES, Story

LABEL = "nvidia.com/device-plugin.config"
SLICED = {"nvidia.com/gpu": 32}  # 8 GPUs x 4 replicas
WHOLE = {"nvidia.com/gpu": 8}


def sidecar_log(story: Story, node: str, pod: str = "device-plugin") -> str:
    logs = sorted((story.sandbox.base_dir / node / "pods").glob(f"*{pod}*/config-manager.log"))
    return "\n".join(Path(p).read_text() for p in logs)


def sharing_labels(story: Story, node: str) -> list[str]:
    """What is left before GFD's labels say ``replicas`` x time-slicing (empty: they do)."""
    labels = (story.rest.get("nodes", node) or {})["metadata"].get("labels", {})
    want = {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "time-slicing"}
    return [f"{k}={labels.get(k)}" for k, v in want.items() if labels.get(k) != v]


def test_the_labelled_node_gets_the_time_sliced_config_and_the_other_the_default(
    sliced: Story,
) -> None:
    sliced.wait("node 1 time-sliced", lambda: story_blockers(sliced.rest, NODES[:1], SLICED), 90)
    sliced.wait("node 2 whole GPUs", lambda: story_blockers(sliced.rest, NODES[1:], WHOLE), 30)
    assert sliced.allocatable(NODES[0])["nvidia.com/gpu"] == 32
    assert sliced.allocatable(NODES[1])["nvidia.com/gpu"] == 8
    sliced.wait("GFD's sharing labels on node 1", lambda: sharing_labels(sliced, NODES[0]), 30)
    assert sharing_labels(sliced, NODES[1]) != []


def test_relabelling_a_node_switches_its_config_without_restarting_the_pod(sliced: Story) -> None:
    def plugin_pod() -> dict[str, object]:
        pods = sliced.rest.list("pods", NAMESPACE)
        return next(
            p
            for p in pods
            if p["metadata"]["name"].startswith("nvidia-device-plugin-daemonset")
            and p["spec"].get("nodeName") == NODES[1]
        )

    before = plugin_pod()["metadata"]["uid"]  # type: ignore[index]
    sliced.label(NODES[1], LABEL, "ts-4")
    sliced.wait(
        "node 2 time-sliced after the relabel",
        lambda: story_blockers(sliced.rest, NODES[1:], SLICED),
        60,
    )
    assert plugin_pod()["metadata"]["uid"] == before  # type: ignore[index]
    assert "sending signal 1 to nvidia-device-plugin" in sidecar_log(sliced, NODES[1])
    sliced.wait("GFD's sharing labels on node 2", lambda: sharing_labels(sliced, NODES[1]), 30)
    assert "sending signal 1 to gpu-feature-discovery" in sidecar_log(
        sliced, NODES[1], "gpu-feature-discovery"
    )


def test_a_label_naming_a_missing_config_is_logged_and_the_config_kept(sliced: Story) -> None:
    sliced.label(NODES[0], LABEL, "no-such-config")
    sliced.wait(
        "the sidecar's complaint",
        lambda: [] if "no-such-config" in sidecar_log(sliced, NODES[0]) else ["no log yet"],
        30,
    )
    log = sidecar_log(sliced, NODES[0])
    assert "which the ConfigMap does not have (it has: default, ts-4)" in log
    assert "keeping the current config" in log
    assert sliced.allocatable(NODES[0])["nvidia.com/gpu"] == 32
