"""nfd-master's part: NodeFeature labels and features.d files onto the Node, stale ones off."""

from __future__ import annotations

import json
from pathlib import Path

from gpu_operator.sandbox.nfd import (
    OWNED_ANNOTATION,
    feature_labels,
    label_patch,
    read_feature_files,
)


def test_feature_files_give_labels_with_the_nfd_prefix_for_bare_keys(tmp_path: Path) -> None:
    (tmp_path / "gfd").write_text("# comment\nnvidia.com/gpu.count=8\nbare=1\n\nbroken line\n")
    assert read_feature_files(tmp_path) == {
        "nvidia.com/gpu.count": "8",
        "feature.node.kubernetes.io/bare": "1",
    }


def test_node_features_of_other_nodes_are_ignored() -> None:
    features = [
        {
            "metadata": {"labels": {"nfd.node.kubernetes.io/node-name": "a"}},
            "spec": {"labels": {"x": "1"}},
        },
        {
            "metadata": {"labels": {"nfd.node.kubernetes.io/node-name": "b"}},
            "spec": {"labels": {"y": "2"}},
        },
    ]
    assert feature_labels("a", features, {"z": "3"}) == {"z": "3", "x": "1"}


def test_labels_nfd_set_before_and_no_longer_wants_are_removed_and_others_kept() -> None:
    node = {
        "metadata": {
            "labels": {"nvidia.com/mig.capable": "true", "nvidia.com/gpu.count": "8", "mine": "x"},
            "annotations": {
                OWNED_ANNOTATION: json.dumps(["nvidia.com/gpu.count", "nvidia.com/mig.capable"])
            },
        }
    }
    patch = label_patch(node, {"nvidia.com/gpu.count": "8"})
    assert patch is not None
    assert patch["metadata"]["labels"] == {"nvidia.com/mig.capable": None}
    steady = {
        "metadata": {
            "labels": {"nvidia.com/gpu.count": "8"},
            "annotations": {OWNED_ANNOTATION: json.dumps(["nvidia.com/gpu.count"])},
        }
    }
    assert label_patch(steady, {"nvidia.com/gpu.count": "8"}) is None
