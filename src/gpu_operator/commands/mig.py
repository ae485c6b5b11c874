"""``gpu-operator mig …``: mig-parted's commands with its flags and environment variables
(apply, assert, export, generate-config, checkpoint, restore) plus ``plan``, the layout planner.

Thin: read files, open the NVML facade, call ``gpu_operator.mig``, print. Progress goes to
stderr, results to stdout; user errors raise ``GpuOperatorError`` (one line from the CLI root).
mig-parted's flags resolve through ``settings_engine`` (``FIELDS``): flag > ``MIG_PARTED_*``
variable > default, booleans as urfave/cli reads them (``-m``, ``--mode-only=false``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gpu_operator.cli_settings import KUBECONFIG, given, go_flags, option
from gpu_operator.cli_settings import kubeconfig as kubeconfig_path
from gpu_operator.errors import ConfigError
from gpu_operator.names import GPU_COUNT_LABEL, GPU_PRODUCT_LABEL, MIG_CONFIG_LABEL
from gpu_operator.settings_engine import Field, one_of, resolve

if TYPE_CHECKING:  # imported where used: --help loads none of it
    from gpu_operator.dra.mig_claims import ClaimDemand
    from gpu_operator.gpu import HardwareSettings
    from gpu_operator.mig.apply import Step
    from gpu_operator.mig.hooks_v1 import HooksSpec
    from gpu_operator.mig.observe import GpuState
    from gpu_operator.mig.planner import Node
    from gpu_operator.mig.spec_v1 import MigConfigEntry

app = typer.Typer(
    help="Partition GPUs with MIG: mig-parted compatible (apply, assert, export, …) + plan.",
    no_args_is_help=True,
)

APPLIED = "MIG configuration applied successfully"
CURRENT = "Selected MIG configuration currently applied"
NOT_CURRENT = "Assertion failure: selected configuration not currently applied"


@dataclass(frozen=True)
class PartedFlags:
    """mig-parted's flags (``FIELDS``), as one command was given them: flag > variable >
    default, through ``settings_engine``."""

    debug: bool = False
    config_file: str | None = None
    selected_config: str | None = None
    hooks_file: str | None = None
    skip_reset: bool = False
    mode_only: bool = False
    valid_config: bool = False
    output_format: str = "yaml"
    config_label: str = "current"
    output_file: str | None = None
    checkpoint_file: str | None = None


FIELDS: dict[str, Field[None]] = {
    "debug": Field("--debug", ("MIG_PARTED_DEBUG",), bool),
    "config_file": Field("--config-file", ("MIG_PARTED_CONFIG_FILE",), str, empty_is_unset=True),
    "selected_config": Field(
        "--selected-config", ("MIG_PARTED_SELECTED_CONFIG",), str, empty_is_unset=True
    ),
    "hooks_file": Field("--hooks-file", ("MIG_PARTED_HOOKS_FILE",), str, empty_is_unset=True),
    "skip_reset": Field("--skip-reset", ("MIG_PARTED_SKIP_RESET",), bool),
    "mode_only": Field("--mode-only", ("MIG_PARTED_MODE_CHANGE_ONLY",), bool),
    "valid_config": Field("--valid-config", ("MIG_PARTED_VALID_CONFIG",), bool),
    "output_format": Field(
        "--output-format", ("MIG_PARTED_OUTPUT_FORMAT",), one_of("yaml", "json")
    ),
    "config_label": Field("--config-label", ("MIG_PARTED_CONFIG_LABEL",), str, empty_is_unset=True),
    "output_file": Field("--output-file", ("MIG_PARTED_OUTPUT_FILE",), str, empty_is_unset=True),
    "checkpoint_file": Field(
        "--checkpoint-file", ("MIG_PARTED_CHECKPOINT_FILE",), str, empty_is_unset=True
    ),
}
"""mig-parted's flags and variables (urfave/cli), resolved by ``settings_engine``."""


def parted_flags(ctx: typer.Context) -> PartedFlags:
    """This command's flags (and the group's ``--debug``) resolved with the environment; a bad
    value is one ``ConfigError`` naming the flag or the variable."""
    params = {**(ctx.parent.params if ctx.parent else {}), **ctx.params}
    return PartedFlags(**resolve(FIELDS, given(FIELDS, params), os.environ, None).values)


_CONFIG_FILE = option(
    FIELDS["config_file"],
    "-f",
    help="mig-parted v1 config ('-' = stdin). Default: the shipped default config.",
)
_SELECTED = option(
    FIELDS["selected_config"], "-c", help="Config name in the file (optional when it holds one)."
)
_HOOKS = option(FIELDS["hooks_file"], "-k")
_MODE_ONLY = option(FIELDS["mode_only"], "-m", help="Only MIG modes.", default="false")
_OUTPUT = option(FIELDS["output_format"], "-o", default="yaml")
_COMMAND = go_flags(FIELDS)


@app.callback(cls=go_flags(FIELDS, group=True))
def mig_root(
    debug: str | None = option(FIELDS["debug"], "-d", default="false"),
) -> None:
    # mig-parted's global flag: resolved with each command's own (``parted_flags``).
    del debug


def _settings(ctx: typer.Context) -> HardwareSettings:
    from gpu_operator.gpu import HardwareSettings

    obj = ctx.obj
    return obj if isinstance(obj, HardwareSettings) else HardwareSettings.from_env()


def _read(path: str, what: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{what} {path}: {error.strerror or error}") from error


def _entries(config_file: str | None, selected: str | None) -> list[MigConfigEntry]:
    from gpu_operator.mig.defaults import DEFAULT_CONFIG_SOURCE, default_config_text
    from gpu_operator.mig.spec_v1 import load_spec

    if config_file is None:
        text, source = default_config_text(), DEFAULT_CONFIG_SOURCE
    else:
        text, source = _read(config_file, "config file"), config_file
    return load_spec(text, source).select(selected, source=source)


def _hooks(hooks_file: str | None) -> HooksSpec | None:
    from gpu_operator.mig.hooks_v1 import load_hooks

    return None if hooks_file is None else load_hooks(_read(hooks_file, "hooks file"), hooks_file)


def _unselected(entries: list[MigConfigEntry], gpus: list[GpuState]) -> tuple[list[str], bool]:
    """The MIG-capable GPUs no entry of the config selects, one line each, and whether the
    config selects no GPU of this node at all (a config for other models: a mistake).

    mig-parted disagrees with itself here: its apply skips such a GPU and exits 0, its assert
    fails ("not all GPUs match the specified config"). Ours agree: a config that selects no GPU
    of the node fails both; one that selects some GPUs leaves the others as they are, in both
    (what mig-parted's apply does, and what NVIDIA's mig-manager ends with: success)."""
    from gpu_operator.mig.plan import unmatched

    left = [f"{g.label}: no config entry selects this GPU" for g in unmatched(entries, gpus)]
    none = bool(left) and not any(e.matches(g.info) for e in entries for g in gpus)
    return left, none


def _progress(step: Step) -> None:
    typer.echo(str(step), err=True)


def _flag_env(flags: PartedFlags, *names: str) -> dict[str, str]:
    """Each of the command's flags (``names``, and ``--debug``) as its variable = its value,
    for hooks (Go spells booleans true/false)."""
    env = {}
    for name in ("debug", *names):
        value = getattr(flags, name)
        text = ("true" if value else "false") if isinstance(value, bool) else value
        env[FIELDS[name].env[0]] = "" if text is None else str(text)
    return env


@app.command("apply", cls=_COMMAND)
def apply_command(
    ctx: typer.Context,
    config_file: str | None = _CONFIG_FILE,
    selected_config: str | None = _SELECTED,
    hooks_file: str | None = _HOOKS,
    skip_reset: str | None = option(
        FIELDS["skip_reset"], "-s", help="Never reset GPUs.", default="false"
    ),
    mode_only: str | None = _MODE_ONLY,
) -> None:
    """Apply a MIG config: idempotent; modes first, then instances at solved placements.

    A config that selects no GPU of this node is refused before anything runs (hooks included),
    as ``assert`` fails it; GPUs a config leaves out are left as they are (see ``_unselected``).
    """
    from gpu_operator.gpu import Nvml
    from gpu_operator.mig.apply import apply_config
    from gpu_operator.mig.hooks import HookRunner
    from gpu_operator.mig.observe import observe

    flags = parted_flags(ctx)
    entries = _entries(flags.config_file, flags.selected_config)
    names = ("config_file", "selected_config", "hooks_file", "skip_reset", "mode_only")
    runner = HookRunner(_hooks(flags.hooks_file), _flag_env(flags, *names))
    with Nvml.open(_settings(ctx)) as nvml:
        left, none = _unselected(entries, observe(nvml))
        if none:
            which = f"config {flags.selected_config!r}" if flags.selected_config else "the config"
            raise ConfigError(
                f"{which} selects no GPU of this node ({'; '.join(left)}): nothing applied "
                "(add an entry whose device-filter matches, or devices: all)"
            )
        runner("apply-start")
        try:
            apply_config(
                nvml,
                entries,
                mode_only=flags.mode_only,
                skip_reset=flags.skip_reset,
                progress=_progress,
                hook=runner,
            )
        finally:
            runner("apply-exit")
    for line in left:
        typer.echo(f"{line}; left as it is", err=True)
    typer.echo(APPLIED)


@app.command("assert", cls=_COMMAND)
def assert_command(
    ctx: typer.Context,
    config_file: str | None = _CONFIG_FILE,
    selected_config: str | None = _SELECTED,
    mode_only: str | None = _MODE_ONLY,
    valid_config: str | None = option(
        FIELDS["valid_config"], "-a", help="Only validate.", default="false"
    ),
) -> None:
    """Exit 0 when the node is as the selected config says, else 1 with what differs."""
    from gpu_operator.gpu import Nvml
    from gpu_operator.mig.observe import observe
    from gpu_operator.mig.plan import plan

    flags = parted_flags(ctx)
    entries = _entries(flags.config_file, flags.selected_config)
    if flags.valid_config:
        typer.echo("Selected MIG configuration is valid")
        return
    with Nvml.open(_settings(ctx)) as nvml:
        gpus = observe(nvml)
    left, none = _unselected(entries, gpus)
    problems = left if none else []
    try:
        problems += [
            f"{c.label}: {c.why}" for c in plan(entries, gpus, mode_only=flags.mode_only).changes
        ]
    except ConfigError as error:
        problems.append(str(error))
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        typer.echo(NOT_CURRENT, err=True)
        raise typer.Exit(1)
    for line in left:
        typer.echo(f"{line}; left as it is", err=True)
    typer.echo(CURRENT)


@app.command("export", cls=_COMMAND)
def export_command(
    ctx: typer.Context,
    output_format: str | None = _OUTPUT,
    config_label: str | None = option(FIELDS["config_label"], "-l", default="current"),
) -> None:
    """Print the live MIG layout as a v1 config."""
    from gpu_operator.gpu import Nvml
    from gpu_operator.mig.export import export_spec
    from gpu_operator.mig.observe import observe
    from gpu_operator.mig.spec_v1 import dump_spec

    flags = parted_flags(ctx)
    with Nvml.open(_settings(ctx)) as nvml:
        spec = export_spec(observe(nvml), flags.config_label)
    typer.echo(dump_spec(spec, flags.output_format), nl=False)


@app.command("generate-config", cls=_COMMAND)
def generate_config_command(
    ctx: typer.Context,
    output_file: str | None = option(FIELDS["output_file"], "-f", help="Default: stdout."),
    output_format: str | None = _OUTPUT,
) -> None:
    """Build a config from the hardware: all-disabled, all-enabled, all-<profile>, balanced."""
    from gpu_operator.gpu import Nvml
    from gpu_operator.mig.export import generate_spec
    from gpu_operator.mig.observe import observe
    from gpu_operator.mig.spec_v1 import dump_spec

    flags = parted_flags(ctx)
    with Nvml.open(_settings(ctx)) as nvml:
        text = dump_spec(generate_spec(observe(nvml)), flags.output_format)
    if flags.output_file is None:
        typer.echo(text, nl=False)
    else:
        Path(flags.output_file).write_text(text)


_CHECKPOINT = option(FIELDS["checkpoint_file"], "-f", help="Required.")


def _checkpoint_file(flags: PartedFlags) -> str:
    if flags.checkpoint_file is None:
        raise ConfigError("-f/--checkpoint-file (MIG_PARTED_CHECKPOINT_FILE) is required")
    return flags.checkpoint_file


@app.command("checkpoint", cls=_COMMAND)
def checkpoint_command(ctx: typer.Context, checkpoint_file: str | None = _CHECKPOINT) -> None:
    """Save the full MIG state (modes, GIs at their placements, CIs)."""
    from gpu_operator.gpu import Nvml
    from gpu_operator.mig.checkpoint import checkpoint, dump_checkpoint
    from gpu_operator.mig.observe import observe

    path = _checkpoint_file(parted_flags(ctx))
    with Nvml.open(_settings(ctx)) as nvml:
        Path(path).write_text(dump_checkpoint(checkpoint(observe(nvml))))
    typer.echo(f"MIG state saved to {path}")


@app.command("restore", cls=_COMMAND)
def restore_command(
    ctx: typer.Context,
    checkpoint_file: str | None = _CHECKPOINT,
    hooks_file: str | None = _HOOKS,
    mode_only: str | None = _MODE_ONLY,
) -> None:
    """Bring the MIG state back to a checkpoint."""
    from gpu_operator.gpu import Nvml
    from gpu_operator.mig.apply import ApplyError, apply_plan
    from gpu_operator.mig.checkpoint import load_checkpoint, restore_plan
    from gpu_operator.mig.hooks import HookRunner
    from gpu_operator.mig.observe import observe

    flags = parted_flags(ctx)
    path, mode_only_ = _checkpoint_file(flags), flags.mode_only
    state = load_checkpoint(_read(path, "checkpoint file"), path)
    env = _flag_env(flags, "checkpoint_file", "hooks_file", "mode_only")
    runner = HookRunner(_hooks(flags.hooks_file), env)
    with Nvml.open(_settings(ctx)) as nvml:
        runner("apply-start")
        try:
            apply_plan(
                nvml,
                restore_plan(state, observe(nvml), mode_only=mode_only_),
                mode_only=mode_only_,
                progress=_progress,
                hook=runner,
            )
            left = restore_plan(state, observe(nvml), mode_only=mode_only_)
            if not left.empty:
                raise ApplyError("restored, but the node still differs from the checkpoint")
        finally:
            runner("apply-exit")
    typer.echo("MIG state restored successfully")


def _node_models(path: str) -> list[Node]:
    """A nodes file: ``node-name: <preset or MODEL[xN],...>`` per line (YAML mapping); each
    spec's GPUs and profiles are read through the facade from a throw-away simulated node."""
    from gpu_operator.mig.sourcemap import load_yaml

    data, _ = load_yaml(_read(path, "nodes file"), path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: expected a mapping of node name to GPU models or preset")
    return _models_of({str(name): str(spec) for name, spec in data.items()}, path)


def _cluster_node_specs(kubeconfig: Path | None) -> dict[str, str]:
    """GPU nodes of a live cluster as ``MODELxCOUNT`` specs, from feature discovery's labels
    (``nvidia.com/gpu.product`` without a ``-MIG-…`` suffix, ``nvidia.com/gpu.count``)."""
    from gpu_operator.gpu.fake.catalogue import MODELS
    from gpu_operator.kube import KubeSettings, build_client, list_nodes

    by_product = {re.sub(r"\s+", "-", m.name): key for key, m in MODELS.items()}
    client = build_client(KubeSettings(kubeconfig=kubeconfig))
    specs: dict[str, str] = {}
    for node in list_nodes(client):
        labels = node.metadata.labels or {}
        product = re.sub(r"-MIG-.*$", "", labels.get(GPU_PRODUCT_LABEL, ""))
        product = product.removesuffix("-SHARED")
        key = by_product.get(product)
        count = labels.get(GPU_COUNT_LABEL, "")
        if key is None or not count.isdigit() or int(count) == 0:
            continue  # not a MIG-capable model we know, or no GPUs counted
        if MODELS[key].mig_capable:
            specs[str(node.metadata.name)] = f"{key}x{count}"
    if not specs:
        raise ConfigError(
            f"the cluster has no nodes labelled with a known MIG-capable {GPU_PRODUCT_LABEL}"
        )
    return specs


def _models_of(specs: dict[str, str], source: str) -> list[Node]:
    from gpu_operator.gpu import HardwareSettings, Nvml
    from gpu_operator.mig.planner import GpuModel, Node

    nodes = []
    with tempfile.TemporaryDirectory(prefix="mig-plan-") as root:
        cache: dict[str, tuple[GpuModel, ...]] = {}
        for name, spec in specs.items():
            if spec not in cache:
                try:
                    nvml = Nvml.open(HardwareSettings(sim=spec, sim_root=Path(root)))
                except ConfigError as error:
                    raise ConfigError(f"{source}: node {name}: {error}") from None
                with nvml:
                    cache[spec] = tuple(
                        GpuModel(g.name, g.pci_device_id, tuple(nvml.gi_profiles(g.index)))
                        for g in nvml.gpus()
                    )
            nodes.append(Node(name, cache[spec]))
    return nodes


def _claims_demand(kubeconfig: Path | None, namespace: str | None) -> ClaimDemand:
    """The MIG demand of the pending ResourceClaims in ``namespace`` (``None``: all)."""
    from gpu_operator.dra.mig_claims import claim_demand
    from gpu_operator.dra.slices import API_VERSION
    from gpu_operator.kube import KubeSettings, build_client
    from gpu_operator.kube.objects import list_namespaced
    from gpu_operator.mig.profiles import parse_profile

    client = build_client(KubeSettings(kubeconfig=kubeconfig))
    try:
        claims = list_namespaced(client, API_VERSION, "ResourceClaim", "resourceclaims", namespace)
    finally:
        client.close()
    found = claim_demand(claims)
    for profile in list(found.demand):
        try:
            parse_profile(profile)
        except ConfigError as error:
            found.skipped.append(f"requests for {profile!r}: {error}")
            del found.demand[profile]
    return found


@app.command("plan")
def plan_command(
    demand: str | None = typer.Option(
        None, "--demand", help="PROFILE=COUNT,… e.g. 1g.10gb=10,3g.40gb=2"
    ),
    from_claims: bool = typer.Option(
        False,
        "--from-claims",
        help="Add the demand of pending ResourceClaims for mig.nvidia.com (profile selectors).",
    ),
    namespace: str | None = typer.Option(
        None, "-n", "--namespace", help="With --from-claims: the claims' namespace (default)."
    ),
    all_namespaces: bool = typer.Option(
        False, "-A", "--all-namespaces", help="With --from-claims: claims of every namespace."
    ),
    nodes: str | None = typer.Option(
        None, "--nodes", help="YAML file: node name → preset or MODEL[xN],… (e.g. dgx-a100)"
    ),
    from_cluster: bool = typer.Option(
        False, "--from-cluster", help="Plan for the GPU nodes of the cluster in KUBECONFIG."
    ),
    kubeconfig: str | None = option(KUBECONFIG, hidden=True),
    output_format: str = typer.Option("text", "-o", "--output-format", help="text, yaml, json"),
) -> None:
    """Propose each node's MIG config label for a demand of MIG devices, and explain it."""
    import yaml

    from gpu_operator.mig.defaults import default_spec
    from gpu_operator.mig.planner import parse_demand, plan_cluster
    from gpu_operator.mig.spec_v1 import spec_data

    if (nodes is None) == (not from_cluster):
        raise ConfigError("mig plan: give exactly one of --nodes FILE or --from-cluster")
    if (namespace is not None or all_namespaces) and not from_claims:
        raise ConfigError("mig plan: -n/--namespace and -A/--all-namespaces go with --from-claims")
    if namespace is not None and all_namespaces:
        raise ConfigError("mig plan: give -n/--namespace or -A/--all-namespaces, not both")
    if demand is None and not from_claims:
        raise ConfigError("mig plan: give --demand PROFILE=COUNT,…, --from-claims, or both")
    wanted = parse_demand(demand) if demand is not None else {}
    notes: list[str] = []
    found = None
    if from_claims:
        where = None if all_namespaces else (namespace or "default")
        found = _claims_demand(kubeconfig_path(kubeconfig), where)
        scope = "all namespaces" if where is None else f"namespace {where}"
        listed = ", ".join(found.claims) or "none for mig.nvidia.com"
        notes.append(f"pending ResourceClaims in {scope}: {listed}")
        notes += [f"not planned: {s}" for s in found.skipped]
        for profile, count in found.demand.items():
            wanted[profile] = wanted.get(profile, 0) + count
        if not any(wanted.values()):
            for line in notes:
                typer.echo(f"# {line}")
            typer.echo("# nothing to plan: no MIG device is asked for")
            return
    if nodes is not None:
        node_models = _node_models(nodes)
    else:
        node_models = _models_of(_cluster_node_specs(kubeconfig_path(kubeconfig)), "cluster")
    cluster = plan_cluster(wanted, node_models, default_spec())
    cluster.explanation[:0] = notes
    custom: dict[str, object] = {}
    for node in cluster.nodes:
        if node.custom is not None:
            custom.update(spec_data(node.custom)["mig-configs"])
    if output_format == "text":
        for node in cluster.nodes:
            typer.echo(f"{node.node}: {MIG_CONFIG_LABEL}={node.config}")
        for line in cluster.explanation:
            typer.echo(f"# {line}")
        if custom:
            typer.echo("# add these to your mig-parted config (custom-config ConfigMap):")
            typer.echo(yaml.safe_dump({"version": "v1", "mig-configs": custom}, sort_keys=False))
    elif output_format in ("yaml", "json"):
        data = {
            "satisfied": cluster.satisfied,
            "unmet": cluster.unmet,
            "strandedSlices": cluster.stranded_slices,
            "nodes": [{"name": n.node, "migConfig": n.config} for n in cluster.nodes],
            "explanation": cluster.explanation,
            "customConfig": {"version": "v1", "mig-configs": custom} if custom else None,
        }
        if found is not None:
            data["claims"] = found.claims
            data["notPlanned"] = found.skipped
        text = json.dumps(data, indent=2) if output_format == "json" else yaml.safe_dump(data)
        typer.echo(text.rstrip("\n"))
    else:
        raise ConfigError(f"-o: output format must be text, yaml or json, got {output_format!r}")
    if not cluster.satisfied:
        raise typer.Exit(1)
