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
        "MYSQL_PWD",
        "DB_PWD",
        "DB_PASS",
        "SMTP_PASS",
        "MY_CREDS",
        "AWS_CREDS",
        "SENTRY_DSN",
        "BEARER",
        "SLACK_WEBHOOK_URL",
    ],
)
def test_names_that_look_secret_are_redacted(name: str) -> None:
    assert redact_environment({name: "value"}) == {name: REDACTED}


@pytest.mark.parametrize(
    "name",
    ["HOME", "PATH", "KEYBOARD_LAYOUT", "OMP_NUM_THREADS", "LANG", "PWD", "OLDPWD", "PASSENGERS"],
)
def test_ordinary_names_keep_their_values(name: str) -> None:
    assert redact_environment({name: "value"}) == {name: "value"}


def test_include_keeps_a_name_that_only_looks_secret() -> None:
    assert redact_environment({"SORT_KEY": "date"}, include=["SORT_KEY"]) == {"SORT_KEY": "date"}


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (
            "host=db port=5432 password=hunter2 user=me",
            "host=db port=5432 password=<redacted> user=me",
        ),
        (
            "mongodb://h/db?authSource=x&password=s8&w=1",
            "mongodb://h/db?authSource=x&password=<redacted>&w=1",
        ),
        ("Server=h;Pwd=s3cr3t;Database=d", "Server=h;Pwd=<redacted>;Database=d"),
        ("postgres://u:pw@h/db", "postgres://<redacted>@h/db"),
        ("/usr/bin:/bin", "/usr/bin:/bin"),
    ],
)
def test_credentials_inside_any_value_are_redacted(value: str, kept: str) -> None:
    assert redact_environment({"CONNECTION": value}) == {"CONNECTION": kept}
