"""Which environment variables are recorded as ``<redacted>``."""

from __future__ import annotations

import pytest

from mitosis.core.redact import REDACTED, redact_environment


@pytest.mark.parametrize(
    "name",
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_API_KEY",
        "API_KEYS",
        "KEY",
        "MYKEY",
        "GITHUB_TOKEN",
        "DB_PASSWORD",
        "SSH_AUTH_SOCK",
        "JUPYTER_SESSION",
    ],
)
def test_names_that_look_secret_are_redacted(name: str) -> None:
    assert redact_environment({name: "value"}) == {name: REDACTED}


@pytest.mark.parametrize("name", ["HOME", "PATH", "KEYBOARD_LAYOUT", "OMP_NUM_THREADS", "LANG"])
def test_ordinary_names_keep_their_values(name: str) -> None:
    assert redact_environment({name: "value"}) == {name: "value"}


def test_include_keeps_a_name_that_only_looks_secret() -> None:
    assert redact_environment({"SORT_KEY": "date"}, include=["SORT_KEY"]) == {"SORT_KEY": "date"}
