"""Keep secrets out of records: environment variables and URLs with credentials."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping

REDACTED = "<redacted>"

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|(^|_)KEYS?(_|$)|KEY$|CREDENTIAL|AUTH|"
    r"COOKIE|SESSION|PRIVATE|SIGNATURE|CERT|"
    # Whole words only: MYSQL_PWD and DB_PASS, but not PASSENGER_COUNT.
    r"(^|_)(PWD|PASS|CREDS?|DSN|BEARER|WEBHOOK)(_|$)",
    re.IGNORECASE,
)
# The shell's working directories, not passwords.
_NOT_SECRET = frozenset({"PWD", "OLDPWD"})
# password=... inside a value: libpq's "host=h password=p", a URL's "?password=p".
_KEYWORD_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|pass|secret|token|api_?key|access_?key)\s*=\s*)"
    r"(?P<value>[^\s&;,'\"]+)",
    re.IGNORECASE,
)
# scheme://user:password@host -> scheme://<redacted>@host ; also bare tokens as user part.
# As urllib splits a URL: the credentials run to the *last* "@" before the path, so a
# password with an unencoded "@" in it is redacted whole, not cut at its first "@".
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<cred>[^/?#\s]+)@")


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name suggests its value is a secret."""
    return name.upper() not in _NOT_SECRET and bool(_SECRET_NAME.search(name))


def redact_url(text: str) -> str:
    """Replace the credentials in ``text``: of every URL (``https://tok@host``), and every
    ``password=...`` or ``token=...`` value (connection strings, query strings)."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return _KEYWORD_SECRET.sub(lambda m: f"{m.group('key')}{REDACTED}", text)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def redact_environment(
    variables: Mapping[str, str],
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> dict[str, str]:
    """Return the variables to record: secrets redacted, ``exclude`` dropped.

    ``include`` patterns name variables to record verbatim even though their name looks
    secret (``SESSION_NAME``, say); ``exclude`` patterns drop variables entirely.
    Credentials inside URL values are always redacted, whatever the name.
    """
    include, exclude = list(include), list(exclude)
    recorded: dict[str, str] = {}
    for name in sorted(variables):
        if _matches(name, exclude):
            continue
        value = variables[name]
        if looks_secret(name) and not _matches(name, include):
            recorded[name] = REDACTED
        else:
            recorded[name] = redact_url(value)
    return recorded
