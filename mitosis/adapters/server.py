"""``mitosis-nb serve``: the trials folder over HTTP, and nothing outside it."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ALL_INTERFACES = ("0.0.0.0", "::", "")  # noqa: S104 - named only to warn about them
# The page's "record" link shows the YAML record in the browser instead of downloading it.
_SHOWN_AS_TEXT = {suffix: "text/plain; charset=utf-8" for suffix in (".yaml", ".log", ".patch")}


class _TrialsHandler(SimpleHTTPRequestHandler):
    """Static files of one folder; traversal and symlinks that lead out of it are refused."""

    server_version = "mitosis-nb"

    def __init__(
        self, *args: Any, root: str, before_index: Callable[[], None], **kwargs: Any
    ) -> None:
        self.root = root
        self.before_index = before_index
        self.extensions_map = {**self.extensions_map, **_SHOWN_AS_TEXT}
        super().__init__(*args, directory=root, **kwargs)

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)

    def send_head(self) -> Any:
        """Refuse before serving: ``..`` anywhere is 403, a path resolving outside is 404."""
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if ".." in raw.replace("\\", "/").split("/"):
            self.send_error(HTTPStatus.FORBIDDEN, "path traversal is refused")
            return None
        if not self._inside(self.translate_path(self.path)):
            # "Not found": whether anything exists outside is none of the client's business.
            self.send_error(HTTPStatus.NOT_FOUND, "not found")
            return None
        if raw in ("/", "/index.html"):
            # Trials may have started, ended, or been deleted by hand since the last look.
            with contextlib.suppress(Exception):  # a stale page is better than none
                self.before_index()
        return super().send_head()

    def end_headers(self) -> None:
        # index.html is rewritten after every trial: make browsers ask again.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _server(bind: str, port: int, handler: Callable[..., _TrialsHandler]) -> _Server:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server_class = type("_FamilyServer", (_Server,), {"address_family": family})
    return server_class((bind, port), handler)  # type: ignore[no-any-return]


def url_of(bind: str, port: int) -> str:
    """The URL to print for a server bound to ``bind``:``port``."""
    host = "127.0.0.1" if bind in ALL_INTERFACES else bind
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    trials_folder: Path,
    port: int,
    bind: str,
    announce: Callable[[str], None],
    before_index: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``trials_folder`` until interrupted; ``announce`` gets the URL once listening,
    and ``before_index`` runs before each request for the index page (to refresh it)."""
    root = os.path.realpath(trials_folder)
    handler = functools.partial(_TrialsHandler, root=root, before_index=before_index)
    server = _server(bind, port, handler)
    try:
        announce(url_of(bind, server.server_address[1]))
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops a server
    finally:
        server.server_close()
