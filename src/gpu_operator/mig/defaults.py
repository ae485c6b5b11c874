"""The shipped default config (package data ``mig/data/config-default.yaml``): upstream's
``default-mig-parted-config`` names and device filters for every model we know."""

from __future__ import annotations

from importlib import resources

from gpu_operator.mig.spec_v1 import Spec, load_spec

DEFAULT_CONFIG_SOURCE = "config-default.yaml (shipped)"


def default_config_text() -> str:
    return resources.files("gpu_operator.mig").joinpath("data/config-default.yaml").read_text()


def default_spec() -> Spec:
    return load_spec(default_config_text(), DEFAULT_CONFIG_SOURCE)
