"""``mitosis-nb serve``: the trials folder over HTTP, and nothing outside it."""

from __future__ import annotations

import contextlib
import functools
import html
import io
import os
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable, Collection
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ALL_INTERFACES = ("0.0.0.0", "::", "")  # noqa: S104 - named only to warn about them
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
IDLE_TIMEOUT_S = 30.0  # a connection that sends nothing for this long is closed
MAX_CONNECTIONS = 32  # at once; more wait in the listen queue for a free slot
# The page's "record" link shows the YAML record in the browser instead of downloading it.
_SHOWN_AS_TEXT = {suffix: "text/plain; charset=utf-8" for suffix in (".yaml", ".log", ".patch")}


class _TrialsHandler(SimpleHTTPRequestHandler):
    """Static files of one folder, to this machine's own names only; traversal, symlinks
    that lead out of it and dot files are refused."""

    server_version = "mitosis-nb"

    def __init__(
        self,
        *args: Any,
        root: str,
        before_index: Callable[[], None],
        hosts: Collection[str],
        **kwargs: Any,
    ) -> None:
        self.root = root
        self.before_index = before_index
        self.hosts = hosts
        self.extensions_map = {**self.extensions_map, **_SHOWN_AS_TEXT}
        super().__init__(*args, directory=root, **kwargs)

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)

    def _host_is_ours(self) -> bool:
        # A web page on a DNS-rebinding domain reaches 127.0.0.1 with its own name as Host:
        # only the names this server was bound to are answered. A client sending no Host at
        # all is no browser.
        # The port is not checked: a page cannot choose it any more than the name, and an SSH
        # tunnel (`ssh -L 9000:127.0.0.1:8000`) makes the browser send its own local port.
        host = self.headers.get("Host")
        return host is None or _host_name(host) in self.hosts

    def _path(self) -> str | None:
        """The request's path, decoded; None (after a 400) for a NUL or undecodable one."""
        try:
            raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path, errors="strict")
        except UnicodeDecodeError:
            raw = "\0"
        if "\0" in raw:
            self.send_error(HTTPStatus.BAD_REQUEST, "the path is not valid UTF-8 text")
            return None
        return raw

    def send_head(self) -> Any:
        """Refuse before serving: a foreign Host is 421, a bad path 400, ``..`` anywhere
        403, a path resolving outside or a dot file 404."""
        if not self._host_is_ours():
            self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "this server answers to its own name")
            return None
        raw = self._path()
        if raw is None:
            return None
        parts = raw.replace("\\", "/").split("/")
        if ".." in parts:
            self.send_error(HTTPStatus.FORBIDDEN, "path traversal is refused")
            return None
        if any(part.startswith(".") for part in parts) or not self._inside(
            self.translate_path(self.path)
        ):
            # "Not found": whether anything exists outside is none of the client's business.
            self.send_error(HTTPStatus.NOT_FOUND, "not found")
            return None
        if raw in ("/", "/index.html"):
            # Trials may have started, ended, or been deleted by hand since the last look.
            with contextlib.suppress(Exception):  # a stale page is better than none
                self.before_index()
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> io.BytesIO | None:
        """A folder's entries, without dot entries or links that lead outside."""
        try:
            names = sorted(os.listdir(path), key=str.lower)
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "not found")
            return None
        shown = [
            name + ("/" if os.path.isdir(os.path.join(path, name)) else "")
            for name in names
            if not name.startswith(".") and self._inside(os.path.join(path, name))
        ]
        items = "".join(
            f'<li><a href="{urllib.parse.quote(name)}">{html.escape(name)}</a></li>'
            for name in shown
        )
        body = (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>trials</title>"
            f"</head><body><ul>{items}</ul></body></html>\n"
        ).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def end_headers(self) -> None:
        # index.html is rewritten after every trial: make browsers ask again.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` at once; a client that goes away
    is one line in the log, never a traceback."""

    daemon_threads = True
    request_queue_size = MAX_CONNECTIONS  # a burst waits in the queue, not in retries
    idle_timeout = IDLE_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Waiting here leaves further clients in the listen queue until a slot is free.
        if not self.slots.acquire(timeout=self.idle_timeout):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        client = f"{client_address[0]}:{client_address[1]}"
        if isinstance(error, (ConnectionError, TimeoutError)):
            sys.stderr.write(f"mitosis-nb: client {client} went away ({type(error).__name__})\n")
        else:
            sys.stderr.write(f"mitosis-nb: request from {client} failed: {error!r}\n")


def _host_name(host: str) -> str:
    """The name of a Host header, without its port: ``[::1]:8000`` gives ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0].rstrip(".")


def _own_names(bind: str) -> frozenset[str]:
    """The host names a request to this server can carry: its bound address or name, the
    loopback names, and (bound to all interfaces) this machine's names and addresses."""
    names = {bind, *LOOPBACK_NAMES}
    if bind in ALL_INTERFACES:
        with contextlib.suppress(OSError):
            names.update({socket.gethostname(), socket.getfqdn()})
            for *_, address in socket.getaddrinfo(socket.gethostname(), None):
                names.add(str(address[0]))
    return frozenset(f"[{n}]".lower() if ":" in n else n.lower() for n in names - {""})


def _server(bind: str, port: int, handler: Callable[..., _TrialsHandler]) -> _Server:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server_class = type("_FamilyServer", (_Server,), {"address_family": family})
    return server_class((bind, port), handler)  # type: ignore[no-any-return]


def _url_of(bind: str, port: int) -> str:
    """The URL to print for a server bound to ``bind``:``port``."""
    host = "127.0.0.1" if bind in ALL_INTERFACES else bind
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    trials_folder: Path,
    port: int,
    bind: str,
    announce: Callable[[str], None],
    before_index: Callable[[], None] = lambda: None,
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> None:
    """Serve ``trials_folder`` until interrupted; ``announce`` gets the URL once listening,
    and ``before_index`` runs before each request for the index page (to refresh it).
    A connection idle for ``idle_timeout`` seconds is closed."""
    root = os.path.realpath(trials_folder)
    hosts = _own_names(bind)
    handler = functools.partial(
        type("_Handler", (_TrialsHandler,), {"timeout": idle_timeout}),
        root=root,
        before_index=before_index,
        hosts=hosts,
    )
    server = _server(bind, port, handler)
    server.idle_timeout = idle_timeout
    try:
        announce(_url_of(bind, server.server_address[1]))
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops a server
    finally:
        server.server_close()
