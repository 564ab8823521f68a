"""Keep secrets out of records and debug patches: environment variables, URLs with
credentials, tokens of well-known shapes, and files whose names look secret."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence

REDACTED = "<redacted>"

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|(^|_)KEYS?(_|$)|KEY$|CREDENTIAL|AUTH|"
    r"COOKIE|SESSION|PRIVATE|SIGNATURE|CERT|JWT|HOOK|SAS|CONNECTION_?STRING|"
    # Whole words only: MYSQL_PWD and DB_PASS, but not PASSENGER_COUNT; GITHUB_PAT, not PATH.
    r"(^|_)(PWD|PASS|CREDS?|DSN|BEARER)(_|$)|(^|_)PAT$",
    re.IGNORECASE,
)
# The shell's working directories, not passwords.
_NOT_SECRET = frozenset({"PWD", "OLDPWD"})
# key=value inside a value, the value redacted and the key kept: libpq's "host=h password=p",
# a URL's "?password=p", an Azure connection string's "AccountKey=...;", a SAS URL's
# "&sig=...", a presigned URL's "X-Amz-Signature=..." ("\b" also starts a word after "-").
_KEYWORD_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|pass|secret|token|api_?key|access_?key|"
    r"account_?key|shared_?access_?key|sig|signature|x-amz-security-token)\s*=\s*)"
    r"(?P<value>[^\s&;,'\"]+)",
    re.IGNORECASE,
)
# scheme://user:password@host -> scheme://<redacted>@host ; also bare tokens as user part.
# As urllib splits a URL: the credentials run to the *last* "@" before the path, so a
# password with an unencoded "@" in it is redacted whole, not cut at its first "@".
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<cred>[^/?#\s]+)@")
# A webhook's URL is its credential: whatever follows the part that says it is a webhook
# (hooks.slack.com/services/, discord.com/api/webhooks/, *.webhook.office.com/webhookb2/).
_WEBHOOK_PATH = re.compile(
    r"(?P<keep>[A-Za-z][A-Za-z0-9+.\-]*://(?:hooks\.[^/\s'\"]+/[^/\s'\"?#]+/|"
    r"[^/\s'\"]+(?:/[^/\s'\"?#]+)*?/(?:hooks|webhooks|webhookb2)/))"
    r"(?P<token>[^\s'\"?#]+)",
    re.IGNORECASE,
)
# Whole tokens of shapes that are secrets wherever they appear: JSON Web Tokens (a base64url
# header "eyJ..." and payload, a signature) and API keys with a vendor's prefix, each as long
# as the vendor makes them, so that "sk-learn-examples" or "hf_cache_dir" stay: OpenAI's and
# Anthropic's sk-, GitHub's ghp_ and github_pat_, Slack's xoxb-, GitLab's glpat-, Hugging
# Face's hf_.
_SECRET_TOKEN = re.compile(
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*|"
    r"\bsk-[A-Za-z0-9_-]{32,}|\bgh[pousr]_[A-Za-z0-9]{36,}|\bgithub_pat_[A-Za-z0-9_]{22,}|"
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bglpat-[A-Za-z0-9_-]{20,}|\bhf_[A-Za-z0-9]{30,}"
)
# Files that hold keys or passwords by convention, matched against every part of a path
# (lower-cased), so that ".ssh/config" and "secrets/db.txt" count as well as ".env".
_SECRET_FILES = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.gpg",
    "*.tfvars",
    "*.tfstate",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".ssh",
    ".gnupg",
    ".netrc",
    "_netrc",
    ".pypirc",
    ".npmrc",
    ".pgpass",
    ".htpasswd",
    ".git-credentials",
    "*credential*",
    "*secret*",
    "*password*",
)


def _looks_secret(name: str) -> bool:
    """Whether an environment variable's name suggests its value is a secret."""
    return name.upper() not in _NOT_SECRET and bool(_SECRET_NAME.search(name))


def looks_secret_file(path: str) -> bool:
    """Whether a file at ``path`` (relative, with ``/``) is by its name one that holds secrets:
    ``.env``, ``id_rsa``, ``*.pem``, anything under ``.ssh/`` or named ``*secret*``..."""
    parts = [part.lower() for part in path.split("/") if part]
    return any(_matches(part, _SECRET_FILES) for part in parts)


def redact_value(text: str) -> str:
    """Replace the secrets in ``text`` that show by their shape: the credentials of every URL
    (``https://tok@host``), every ``password=``, ``token=``, ``AccountKey=``, ``sig=`` or
    ``X-Amz-Signature=`` value, a webhook URL's path, JSON Web Tokens and vendors' API keys
    (``sk-...``, ``ghp_...``). Secrets of no known shape stay as they are."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _WEBHOOK_PATH.sub(lambda m: f"{m.group('keep')}{REDACTED}", text)
    text = _SECRET_TOKEN.sub(REDACTED, text)
    return _KEYWORD_SECRET.sub(lambda m: f"{m.group('key')}{REDACTED}", text)


def redact_patch(patch: str) -> str:
    """``patch`` with :func:`redact_value` applied to the lines it adds.

    Context and removed lines are left alone, so the patch still applies to its commit (what
    they hold is in the repository's history already); so are binary hunks, which have no
    ``+`` lines.
    """
    lines = patch.splitlines(keepends=True)
    return "".join(
        redact_value(line) if line.startswith("+") and not _is_header(line) else line
        for line in lines
    )


def _is_header(line: str) -> bool:
    return line.startswith(("+++ a/", "+++ b/", "+++ /dev/null", '+++ "'))


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def split_secret_files(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """``paths`` divided into those a debug patch may hold and those it leaves out because
    their names look secret (:func:`looks_secret_file`), each sorted."""
    kept = sorted(path for path in paths if not looks_secret_file(path))
    left_out = sorted(path for path in paths if looks_secret_file(path))
    return kept, left_out


def redact_environment(
    variables: Mapping[str, str],
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> dict[str, str]:
    """Return the variables to record: secrets redacted, ``exclude`` dropped.

    ``include`` patterns name variables to record verbatim even though their name looks
    secret (``SESSION_NAME``, say); ``exclude`` patterns drop variables entirely.
    Secrets inside values (:func:`redact_value`) are always redacted, whatever the name.
    """
    include, exclude = list(include), list(exclude)
    recorded: dict[str, str] = {}
    for name in sorted(variables):
        if _matches(name, exclude):
            continue
        value = variables[name]
        if _looks_secret(name) and not _matches(name, include):
            recorded[name] = REDACTED
        else:
            recorded[name] = redact_value(value)
    return recorded
