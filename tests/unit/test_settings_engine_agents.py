"""The engine's readers the typer agents need (``integer``, ``number``) and the command line as
urfave/cli reads it (``cli_settings.go_args``): a boolean flag bare or with ``=value``, a flag
spelt with one dash, a value after ``-c=``; a bad value named by its flag or variable."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gpu_operator.cli_settings import given, go_args, go_flags, kubeconfig, option
from gpu_operator.errors import ConfigError
from gpu_operator.settings_engine import Field, integer, number, one_of, resolve

FIELDS: dict[str, Field[None]] = {
    "with_wait": Field("--with-wait", ("WITH_WAIT",), bool),
    "component": Field("--component", ("COMPONENT",), one_of("driver", "cuda")),
    "port": Field("--metrics-port", ("METRICS_PORT",), integer),
    "interval": Field("--sleep-interval-seconds", ("SLEEP_INTERVAL_SECONDS",), number),
}


def test_an_integer_and_a_number_are_read_and_a_bad_one_is_named_with_its_text() -> None:
    env = {"METRICS_PORT": "8000", "SLEEP_INTERVAL_SECONDS": "0.5"}
    assert resolve(FIELDS, {}, env, None).values == {"port": 8000, "interval": 0.5}
    with pytest.raises(ConfigError) as caught:
        resolve(FIELDS, {}, {"METRICS_PORT": "80x"}, None)
    assert str(caught.value) == "METRICS_PORT='80x': not an integer"
    with pytest.raises(ConfigError) as caught:
        resolve(FIELDS, {"interval": "soon"}, {}, None)
    assert str(caught.value) == "--sleep-interval-seconds='soon': not a number"
    with pytest.raises(ConfigError, match="'nan': not a number"):
        resolve(FIELDS, {}, {"SLEEP_INTERVAL_SECONDS": "nan"}, None)


def test_an_empty_integer_or_number_variable_is_unset_as_urfave_cli_skips_it() -> None:
    resolved = resolve(FIELDS, {}, {"METRICS_PORT": "", "SLEEP_INTERVAL_SECONDS": ""}, None)
    assert resolved.values == {}


class _Param:
    """What ``go_args`` reads of a click option."""

    def __init__(self, name: str, *opts: str, is_flag: bool = False) -> None:
        self.name, self.opts, self.secondary_opts, self.is_flag = name, opts, (), is_flag


PARAMS = [
    _Param("with_wait", "-w", "--with-wait"),
    _Param("component", "-c", "--component"),
    _Param("namespace", "--namespace", "-ns"),
    _Param("dry_run", "--dry-run", is_flag=True),
]


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (["-w"], ["--with-wait=true"]),
        (["--with-wait"], ["--with-wait=true"]),
        (["--with-wait=false"], ["--with-wait=false"]),
        (["-w=0"], ["--with-wait=0"]),
        (["-w", "False"], ["--with-wait=False"]),
        (["-w", "-c", "cuda"], ["--with-wait=true", "-c", "cuda"]),
        (["-c", "-w"], ["-c", "-w"]),  # -w is -c's value
        (["-c=cuda"], ["-c", "cuda"]),
        (["-component", "cuda", "-with-wait"], ["--component", "cuda", "--with-wait=true"]),
        (["-ns", "ops"], ["-ns", "ops"]),
        (["--c", "cuda", "--w"], ["-c", "cuda", "--with-wait=true"]),
        (["--dry-run", "-w"], ["--dry-run", "--with-wait=true"]),
        (["-x", "file", "-w"], ["-x", "file", "--with-wait=true"]),
        (["--", "-w"], ["--", "-w"]),
    ],
)
def test_the_command_line_is_read_as_go_reads_it(args: list[str], parsed: list[str]) -> None:
    assert go_args(args, PARAMS, {"with_wait"}, group=False) == parsed


def test_a_group_reads_its_own_flags_and_leaves_its_subcommand_s_alone() -> None:
    args = ["-w", "sub", "-w"]
    assert go_args(args, PARAMS, {"with_wait"}, group=True) == ["--with-wait=true", "sub", "-w"]


def _agent() -> typer.Typer:
    app = typer.Typer()

    @app.command(cls=go_flags(FIELDS))
    def agent(
        ctx: typer.Context,
        with_wait: str | None = option(FIELDS["with_wait"], "-w", default="false"),
        component: str | None = option(FIELDS["component"], "-c"),
        port: str | None = option(FIELDS["port"], "-p", default=0),
    ) -> None:
        import os

        values: dict[str, Any] = resolve(FIELDS, given(FIELDS, ctx.params), os.environ, None).values
        typer.echo(repr(sorted(values.items())))

    return app


@pytest.mark.parametrize(
    ("args", "env", "out"),
    [
        (
            [],
            {"WITH_WAIT": "T", "COMPONENT": "cuda"},
            "[('component', 'cuda'), ('with_wait', True)]",
        ),
        (["-w=false"], {"WITH_WAIT": "true"}, "[('with_wait', False)]"),
        (
            ["-w", "-c", "driver"],
            {"COMPONENT": "cuda"},
            "[('component', 'driver'), ('with_wait', True)]",
        ),
        (["--metrics-port=9"], {"METRICS_PORT": "8"}, "[('port', 9)]"),
    ],
)
def test_a_typer_agent_takes_the_flag_over_the_variable(
    args: list[str], env: dict[str, str], out: str
) -> None:
    result = CliRunner().invoke(_agent(), args, env=env)
    assert (result.exit_code, result.stdout.strip()) == (0, out), result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"WITH_WAIT": "yes"}, "WITH_WAIT='yes': not a boolean; use one of 1, t, T"),
        (["-w=on"], {}, "--with-wait='on': not a boolean; use one of 1, t, T"),
        ([], {"METRICS_PORT": "eighty"}, "METRICS_PORT='eighty': not an integer"),
        (["-c", "gpu"], {}, "--component='gpu': expected one of driver, cuda"),
    ],
)
def test_a_typer_agent_refuses_a_bad_value_naming_the_flag_or_the_variable(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = CliRunner().invoke(_agent(), args, env=env)
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith(message)


def test_the_kubeconfig_flag_beats_the_variable_and_an_empty_variable_is_unset() -> None:
    assert str(kubeconfig("/flag", {"KUBECONFIG": "/env"})) == "/flag"
    assert str(kubeconfig(None, {"KUBECONFIG": "/env"})) == "/env"
    assert kubeconfig(None, {"KUBECONFIG": ""}) is None


def test_the_help_names_the_variables_and_the_default() -> None:
    result = CliRunner().invoke(_agent(), ["--help"], env={"COLUMNS": "200"})
    assert "(env: WITH_WAIT; default: false)" in result.stdout
    assert "[=BOOL]" in result.stdout


def test_an_empty_flag_of_a_field_whose_empty_means_unset_is_not_given() -> None:
    fields: dict[str, Field[Any]] = {
        "kubeconfig": Field("--kubeconfig", ("KUBECONFIG",), str, empty_is_unset=True)
    }
    assert resolve(fields, {"kubeconfig": ""}, {"KUBECONFIG": "/env"}, None).values == {
        "kubeconfig": "/env"
    }
    with pytest.raises(ConfigError, match="--with-wait='': not a boolean"):
        resolve(FIELDS, {"with_wait": ""}, {}, None)
