"""Which environment variables are recorded as ``<redacted>``, which values lose what part,
and which files a debug patch leaves out."""

from __future__ import annotations

import pytest

from mitosis.core.redact import (
    REDACTED,
    looks_secret_file,
    redact_environment,
    redact_patch,
    redact_value,
    split_secret_files,
)


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
        "GITHUB_PAT",
        "PAT",
        "CI_JOB_JWT",
        "JWT_TOKEN_V2",
        "SLACK_HOOK_URL",
        "GIT_HOOK",
        "REQUEST_SIGNATURE",
        "AZURE_SAS",
        "SAS_URL",
        "STORAGESAS",
        "DB_CONNECTION_STRING",
        "AZURE_STORAGE_CONNECTION_STRING",
        "SERVICEBUS_CONNECTIONSTRING",
    ],
)
def test_names_that_look_secret_are_redacted(name: str) -> None:
    assert redact_environment({name: "value"}) == {name: REDACTED}


@pytest.mark.parametrize(
    "name",
    [
        "HOME",
        "PATH",
        "KEYBOARD_LAYOUT",
        "OMP_NUM_THREADS",
        "LANG",
        "PWD",
        "OLDPWD",
        "PASSENGERS",
        "HOSTNAME",
        "SHELL",
        "TERM",
        "USER",
        "LOGNAME",
        "LC_ALL",
        "DISPLAY",
        "EDITOR",
        "PAGER",
        "TMPDIR",
        "MANPATH",
        "PYTHONPATH",
        "LD_LIBRARY_PATH",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "XDG_RUNTIME_DIR",
        "SHLVL",
        "COLORTERM",
        "LS_COLORS",
        "MAIL",
        "CUDA_VISIBLE_DEVICES",
        "PATHEXT",
        "PATH_INFO",
        "SPATIAL_INDEX",
    ],
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


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFy+/x==;"
            "EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=<redacted>;"
            "EndpointSuffix=core.windows.net",
        ),
        (
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
            "SharedAccessKey=abc123=",
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
            "SharedAccessKey=<redacted>",
        ),
        (
            "https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=AbC%2Fd%3D&se=1",
            "https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=<redacted>&se=1",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=0a1b2c",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F&X-Amz-Signature=<redacted>",
        ),
        (
            "https://storage.googleapis.com/b/o?X-Goog-Date=1&X-Goog-Signature=9f8e7d",
            "https://storage.googleapis.com/b/o?X-Goog-Date=1&X-Goog-Signature=<redacted>",
        ),
        (
            "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/<redacted>",
        ),
        (
            "https://discord.com/api/webhooks/123456/abcDEF-ghi",
            "https://discord.com/api/webhooks/<redacted>",
        ),
        (
            "https://contoso.webhook.office.com/webhookb2/1234@5678/IncomingWebhook/ab/cd",
            "https://contoso.webhook.office.com/webhookb2/<redacted>",
        ),
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1g",
            "Bearer <redacted>",
        ),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz012345 end", "key <redacted> end"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "<redacted>"),
        ("https://example.org/docs/hooks.html", "https://example.org/docs/hooks.html"),
        ("scikit-learn sk-learn eyJ", "scikit-learn sk-learn eyJ"),
        (
            "/data/sk-learn-examples-and-tutorials/hf_transformers_cache_dir_long",
            "/data/sk-learn-examples-and-tutorials/hf_transformers_cache_dir_long",
        ),
        ("xoxb-123456789012-abcdefABCDEF", "<redacted>"),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "<redacted>"),
    ],
)
def test_secrets_of_known_shapes_are_redacted_and_their_keys_kept(value: str, kept: str) -> None:
    assert redact_value(value) == kept
    assert redact_environment({"NEUTRAL_NAME": value}) == {"NEUTRAL_NAME": kept}


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.local",
        "config/prod.env",
        "server.pem",
        "tls/server.key",
        "id_rsa",
        "keys/id_ed25519.pub",
        "id_ecdsa",
        "id_dsa",
        ".ssh/config",
        ".netrc",
        ".pypirc",
        "aws_credentials.json",
        ".aws/credentials",
        "cert.p12",
        "cert.pfx",
        ".git-credentials",
        "client_secret.json",
        "Secrets/notes.txt",
    ],
)
def test_files_named_like_secrets_are_recognised(path: str) -> None:
    assert looks_secret_file(path)


@pytest.mark.parametrize(
    "path", ["analysis.py", "data/results.csv", "notes.md", "environment.yml", "keyboard.py"]
)
def test_ordinary_files_are_not_taken_for_secrets(path: str) -> None:
    assert not looks_secret_file(path)


def test_split_secret_files_sorts_each_side() -> None:
    assert split_secret_files(["z.py", ".env", "a.py", "id_rsa"]) == (
        ["a.py", "z.py"],
        [".env", "id_rsa"],
    )


def test_a_patch_loses_secrets_only_on_the_lines_it_adds() -> None:
    patch = (
        "diff --git a/conf.py b/conf.py\n"
        "--- a/conf.py\n"
        "+++ b/conf.py\n"
        "@@ -1,2 +1,2 @@\n"
        " URL = 'https://u:old@h/x'\n"
        "-KEY = 'sk-abcdefghijklmnopqrstuvwxyz0123456789'\n"
        "+KEY = 'sk-zyxwvutsrqponmlkjihgfedcba9876543210'\n"
    )
    redacted = redact_patch(patch)
    assert "+KEY = '<redacted>'\n" in redacted
    # What the patch must match at its commit stays as it is, so that it still applies.
    assert " URL = 'https://u:old@h/x'\n" in redacted
    assert "-KEY = 'sk-abcdefghijklmnopqrstuvwxyz0123456789'\n" in redacted
    assert "+++ b/conf.py\n" in redacted


def test_code_names_that_start_like_a_token_stay_in_a_patch() -> None:
    patch = (
        "+++ b/fit.py\n"
        "+hf_transformers_cache_directory_name = 'models'\n"
        "+ghp_style_helper_with_a_long_enough_name_here = 1\n"
        "+token = 'hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567'\n"
    )
    redacted = redact_patch(patch)
    assert "hf_transformers_cache_directory_name" in redacted
    assert "ghp_style_helper_with_a_long_enough_name_here" in redacted
    assert "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567" not in redacted
