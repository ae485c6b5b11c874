"""Boolean settings read as Go's ``strconv.ParseBool`` reads them (urfave/cli, every upstream
agent): its twelve words and nothing else, an empty variable as unset, and one line naming the
flag or variable and the accepted words for anything else."""

from __future__ import annotations

import pytest

from gpu_operator.booleans import env_bool, parse_bool
from gpu_operator.errors import ConfigError


@pytest.mark.parametrize("word", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_s_true_words_are_true(word: str) -> None:
    assert parse_bool(word, "X") is True


@pytest.mark.parametrize("word", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_s_false_words_are_false(word: str) -> None:
    assert parse_bool(word, "X") is False


@pytest.mark.parametrize("word", ["maybe", "yes", "on", "tRuE", " true", "2", ""])
def test_anything_else_is_refused_naming_the_source_and_the_words(word: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_bool(word, "WITH_REBOOT")
    message = str(caught.value)
    assert message.startswith(f"WITH_REBOOT={word!r}: not a boolean")
    assert "1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False" in message


def test_an_unset_or_empty_variable_gives_the_default() -> None:
    assert env_bool({}, "CDI_ENABLED") is False
    assert env_bool({"CDI_ENABLED": ""}, "CDI_ENABLED", default=True) is True
    assert env_bool({"CDI_ENABLED": "T"}, "CDI_ENABLED") is True
    with pytest.raises(ConfigError, match="CDI_ENABLED='yesplease'"):
        env_bool({"CDI_ENABLED": "yesplease"}, "CDI_ENABLED")
