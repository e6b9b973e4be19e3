"""A local stand-in for the Hugging Face Hub, for tests (the real hub is unreachable in CI).

It answers the routes ``huggingface_hub`` uses to download a file
(``HEAD``/``GET /{repo_id}/resolve/{revision}/{path}``) from a folder laid out as
``root/<org>/<name>/<path>``, with the headers the real hub sends (``X-Repo-Commit``, ``ETag``,
``Content-Length``) and its error codes (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``). Faults can be injected: a truncated body, a stopped server.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "org" / "repo").mkdir(parents=True)
    >>> _ = (root / "org" / "repo" / "a.txt").write_text("hi")
    >>> with HubStandIn(root) as hub:
    ...     hub.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["HubStandIn", "commit_for", "hub_env"]


def commit_for(repo_id: str) -> str:
    """The (fake, stable) 40-hex commit hash the stand-in reports for ``repo_id``'s main."""
    return hashlib.sha1(repo_id.encode()).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "zoo-hub-stand-in/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _error(self, code: int, error_code: str, message: str) -> None:
        body = f'{{"error": "{message}"}}'.encode()
        self.send_response(code)
        self.send_header("X-Error-Code", error_code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        hub: HubStandIn = self.server.hub  # type: ignore[attr-defined]
        hub.requests.append((self.command, self.path))
        parts = urllib.parse.unquote(urllib.parse.urlparse(self.path).path).strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(404, "EntryNotFound", f"unknown route {self.path}")
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        repo_dir = hub.root / repo_id
        if not repo_dir.is_dir():
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        commit = commit_for(repo_id)
        if revision not in ("main", commit) and revision not in hub.extra_revisions.get(repo_id, ()):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        path = repo_dir / filename
        if not path.is_file():
            return self._error(404, "EntryNotFound", f"{filename} does not exist at {revision}")
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest()
        start = 0
        range_header = self.headers.get("Range", "")
        if self.command == "GET" and range_header.startswith("bytes="):
            start = int(range_header[len("bytes="):].split("-", 1)[0] or 0)
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "GET":
            if filename in hub.truncate:
                # the connection drops half-way; resumed requests drop before any byte
                self.wfile.write(b"" if start else body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    do_GET = _route
    do_HEAD = _route


class HubStandIn:
    """Serve ``root`` as a hub on 127.0.0.1 (a free port) until :meth:`stop`.

    Attributes:
        url: the endpoint to put in ``HF_ENDPOINT``.
        truncate: file names whose downloads break: the first GET stops half-way, resumed
            (``Range``) GETs stop before any byte. ``Range`` is honoured otherwise.
        extra_revisions: ``{repo_id: {revision, ...}}`` accepted besides ``main`` and the commit.
        requests: ``(method, path)`` of every request received.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.truncate: set[str] = set()
        self.extra_revisions: dict[str, set[str]] = {}
        self.requests: list[tuple[str, str]] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "HubStandIn":
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("HubStandIn is not running; call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "HubStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def hub_env(url: str, cache_dir: str | Path, offline: bool = False) -> Iterator[None]:
    """Point ``HF_ENDPOINT``/``HF_HUB_CACHE`` (and optionally ``HF_HUB_OFFLINE``) at a stand-in."""
    keys = ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_XET")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({"HF_ENDPOINT": url, "HF_HUB_CACHE": str(cache_dir), "HF_HUB_DISABLE_XET": "1"})
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    else:
        os.environ.pop("HF_HUB_OFFLINE", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
