"""A reverse proxy in front of the API server that can break watches on command.

`ApiProxy` listens on 127.0.0.1 (plain HTTP) and forwards every request over HTTPS to
the API server of a kubeconfig, passing the client's Authorization header through, and
writes a kubeconfig that points at it with the same token. Responses are streamed: a
watch's JSON lines reach the client as they come. On command it

- `hold()`s watch events of some resources: drops them (bookmarks too), so the client
  misses them for good; only a new listing can tell it what happened;
- `expire()`s every open watch: ends it with the `410 Gone` ERROR event that an API
  server sends when a resourceVersion is too old, as a client-go or kopf client then
  lists again (and stops holding first, so that the new watches see everything).

A proxy, not a fault inside the operator: the operator runs unchanged and sees what an
API server and a network could really do to it.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

EXPIRED = {
    "type": "ERROR",
    "object": {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
        "message": "too old resource version",
    },
}
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",  # plain bodies: watch lines must be readable on the way
    }
)
KADENCE_KINDS = ("schedules", "tasks", "jobs")
"""What the operator watches."""


@dataclass(frozen=True)
class Dropped:
    """A watch event the proxy held back."""

    resource: str
    type: str
    namespace: str
    name: str


class _Watch:
    """One open watch response: its client side, and the upstream connection it reads."""

    def __init__(self, resource: str, handler: _Handler, upstream: http.client.HTTPConnection):
        self.resource = resource
        self.handler = handler
        self.upstream = upstream
        self.lock = threading.Lock()
        self.ended = False

    def send(self, line: bytes) -> bool:
        """Write one line as a chunk; False once the stream has ended."""
        with self.lock:
            if self.ended:
                return False
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.handler.wfile.flush()
            return True

    def end(self, last: bytes | None = None) -> None:
        """End the response (after `last`, if given) and stop reading upstream."""
        with self.lock:
            if self.ended:
                return
            self.ended = True
            with contextlib.suppress(OSError):
                if last is not None:
                    self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(last), last))
                self.handler.wfile.write(b"0\r\n\r\n")
                self.handler.wfile.flush()
        if self.upstream.sock is not None:
            with contextlib.suppress(OSError):
                self.upstream.sock.shutdown(socket.SHUT_RDWR)


class ApiProxy:
    """A proxy to the API server of `kubeconfig`, and a kubeconfig (`self.kubeconfig`) that
    goes through it with the same credentials. Use it in a `with` block."""

    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        contexts = {c["name"]: c["context"] for c in config["contexts"]}
        context = contexts[config.get("current-context") or next(iter(contexts))]
        cluster = {c["name"]: c["cluster"] for c in config["clusters"]}[context["cluster"]]
        user = {u["name"]: u["user"] for u in config["users"]}[context["user"]]
        if "token" not in user:
            raise ValueError(f"{kubeconfig}: the proxy passes a bearer token through; none here")
        server = urlsplit(cluster["server"])
        self._host, self._port = server.hostname or "127.0.0.1", server.port or 443
        self._tls = _tls_context(cluster, kubeconfig.parent)
        self._lock = threading.Lock()
        self._watches: list[_Watch] = []
        self._holding: frozenset[str] = frozenset()
        self.dropped: list[Dropped] = []
        self.passed = 0
        """Watch events passed to clients."""
        self.expired = 0
        """Watches ended with 410 Gone."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="api-proxy", daemon=True
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.kubeconfig = workdir / "proxied.kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "proxy", "cluster": {"server": self.url}}],
                    "users": [{"name": "proxied", "user": {"token": user["token"]}}],
                    "contexts": [
                        {"name": "proxy", "context": {"cluster": "proxy", "user": "proxied"}}
                    ],
                    "current-context": "proxy",
                },
                sort_keys=False,
            )
        )
        self.kubeconfig.chmod(0o600)

    def __enter__(self) -> ApiProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        for watch in self._open():
            watch.end()
        self._server.server_close()

    # -- commands ------------------------------------------------------------------------

    def hold(self, resources: Iterable[str] = KADENCE_KINDS) -> None:
        """Drop the watch events of `resources` (plural names) from now on, until `release()`
        or `expire()`."""
        with self._lock:
            self._holding = frozenset(resources)

    def release(self) -> None:
        """Pass every watch event again (those dropped stay lost)."""
        with self._lock:
            self._holding = frozenset()

    def expire(self) -> int:
        """Stop holding, and end every open watch with a 410 Gone ERROR event; returns how
        many were ended."""
        self.release()
        line = json.dumps(EXPIRED, separators=(",", ":")).encode() + b"\n"
        ended = 0
        for watch in self._open():
            if not watch.ended:
                watch.end(line)
                ended += 1
        with self._lock:
            self.expired += ended
        return ended

    def watching(self) -> set[str]:
        """The resources that have a watch open through the proxy now."""
        return {watch.resource for watch in self._open() if not watch.ended}

    def dropped_names(self, resource: str, type_: str) -> set[str]:
        """The names whose `type_` events of `resource` were held back."""
        with self._lock:
            return {d.name for d in self.dropped if (d.resource, d.type) == (resource, type_)}

    def _open(self) -> list[_Watch]:
        with self._lock:
            return list(self._watches)

    # -- the handler's side --------------------------------------------------------------

    def _connect(self, *, streaming: bool) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self._host, self._port, context=self._tls, timeout=None if streaming else 120
        )

    def _held(self, resource: str) -> bool:
        with self._lock:
            return resource in self._holding

    def _drop(self, resource: str, line: bytes) -> None:
        try:
            event = json.loads(line)
            meta = event.get("object", {}).get("metadata", {})
            dropped = Dropped(
                resource, event.get("type", ""), meta.get("namespace", ""), meta.get("name", "")
            )
        except ValueError:
            dropped = Dropped(resource, "?", "", "")
        with self._lock:
            self.dropped.append(dropped)

    def _register(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.append(watch)

    def _unregister(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.remove(watch)


def _tls_context(cluster: dict[str, Any], base: Path) -> ssl.SSLContext:
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if "certificate-authority-data" in cluster:
        pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
        return ssl.create_default_context(cadata=pem)
    if "certificate-authority" in cluster:
        return ssl.create_default_context(cafile=str(base / cluster["certificate-authority"]))
    return ssl.create_default_context()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def proxy(self) -> ApiProxy:
        proxy: ApiProxy = self.server.proxy  # type: ignore[attr-defined]
        return proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        query = parse_qs(urlsplit(self.path).query)
        watch = query.get("watch", [""])[0] in ("true", "1")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = self.proxy._connect(streaming=watch)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
        except OSError as error:  # the API server is down: say so as a gateway would
            upstream.close()
            self.send_error(502, f"API server unreachable: {error}")
            return
        try:
            if watch and response.status == 200:
                self._stream(response, upstream)
            else:
                self._copy(response)
        finally:
            upstream.close()

    def _start(self, response: http.client.HTTPResponse) -> None:
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)

    def _copy(self, response: http.client.HTTPResponse) -> None:
        data = response.read()
        self._start(response)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(
        self, response: http.client.HTTPResponse, upstream: http.client.HTTPConnection
    ) -> None:
        resource = urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1]
        self._start(response)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        watch = _Watch(resource, self, upstream)
        self.proxy._register(watch)
        try:
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException):
                    break
                if not line:
                    break
                if self.proxy._held(resource):
                    self.proxy._drop(resource, line)
                    continue
                try:
                    if not watch.send(line if line.endswith(b"\n") else line + b"\n"):
                        break
                except OSError:  # the client went away
                    break
                with self.proxy._lock:
                    self.proxy.passed += 1
        finally:
            watch.end()
            self.proxy._unregister(watch)
