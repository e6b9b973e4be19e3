"""A local stand-in for the Hugging Face Hub, for tests (the real hub is unreachable in CI).

It answers the routes ``huggingface_hub`` uses to download a file
(``HEAD``/``GET /{repo_id}/resolve/{revision}/{path}``, ``Range`` honoured) and to describe a
repository (``GET /api/models/{repo_id}[/revision/{revision}][?blobs=true]``, what
``HfApi.model_info(..., files_metadata=True)`` calls: the commit ``sha`` and ``siblings`` with
``size``, ``blobId`` and, for LFS files, ``lfs: {sha256, size, pointerSize}``) from a folder laid
out as ``root/<org>/<name>/<path>``, with the headers the real hub sends (``X-Repo-Commit``,
``ETag``: the sha256 for LFS files, the git blob id otherwise, ``Content-Length``) and its error
codes (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``). Faults can be injected: a
truncated body, a slow (throttled) body, a stopped server; ``Range`` requests and the bytes sent
are recorded.

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
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HubStandIn", "commit_for", "git_blob_id", "hub_env", "is_lfs"]

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".pkl", ".npz", ".h5", ".onnx", ".gguf")
"""Files the stand-in stores "in LFS" (as a typical hub repo's ``.gitattributes`` does)."""


def is_lfs(filename: str) -> bool:
    """Whether the stand-in serves ``filename`` as an LFS file (its ETag is then its sha256).

    Example:
        >>> is_lfs("model.safetensors"), is_lfs("config.json")
        (True, False)
    """
    return filename.endswith(LFS_SUFFIXES)


def git_blob_id(data: bytes) -> str:
    """The git blob id (sha1 of ``b"blob <len>\\0" + data``), the hub's ETag for non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


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

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _model_info(self, hub: HubStandIn, parts: list[str], blobs: bool) -> None:
        # /api/models/{org}/{name}[/revision/{rev}]
        repo_id = "/".join(parts[2:4])
        revision = parts[5] if len(parts) >= 6 and parts[4] == "revision" else "main"
        repo_dir = hub.root / repo_id
        if not repo_dir.is_dir():
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        commit = commit_for(repo_id)
        if revision not in ("main", commit) and revision not in hub.extra_revisions.get(repo_id, ()):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        siblings = []
        for path in sorted(p for p in repo_dir.rglob("*") if p.is_file()):
            name = path.relative_to(repo_dir).as_posix()
            entry: dict[str, object] = {"rfilename": name}
            if blobs:
                data = path.read_bytes()
                entry.update(size=len(data), blobId=git_blob_id(data))
                if is_lfs(name):
                    entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        self._json({"_id": commit[:24], "id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                    "disabled": False, "gated": False, "tags": [], "siblings": siblings})

    def _route(self) -> None:
        hub: HubStandIn = self.server.hub  # type: ignore[attr-defined]
        hub.requests.append((self.command, self.path))
        url = urllib.parse.urlparse(self.path)
        parts = urllib.parse.unquote(url.path).strip("/").split("/")
        if len(parts) >= 4 and parts[:2] == ["api", "models"]:
            blobs = urllib.parse.parse_qs(url.query).get("blobs", ["false"])[0].lower() == "true"
            return self._model_info(hub, parts, blobs)
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
        etag = hashlib.sha256(data).hexdigest() if is_lfs(filename) else git_blob_id(data)
        start = 0
        range_header = self.headers.get("Range", "")
        if self.command == "GET" and range_header.startswith("bytes="):
            start = int(range_header[len("bytes="):].split("-", 1)[0] or 0)
            hub.ranges.append((filename, range_header))
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
            delay = hub.throttle.get(filename)
            step = len(body) if delay is None else hub.throttle_chunk
            try:
                for i in range(0, len(body), max(step, 1)):
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    hub.bytes_sent[filename] = hub.bytes_sent.get(filename, 0) + len(body[i:i + step])
                    if delay is not None:
                        time.sleep(delay)
            except (BrokenPipeError, ConnectionResetError):  # the client went away (killed)
                self.close_connection = True

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
        ranges: ``(file name, Range header)`` of every ``GET`` that asked for a range.
        bytes_sent: body bytes written per file name (all ``GET`` s together).
        throttle: ``{file name: seconds}`` -- send that file in ``throttle_chunk``-byte pieces with
            this pause after each (a slow link, to interrupt a download half-way).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.ranges: list[tuple[str, str]] = []
        self.bytes_sent: dict[str, int] = {}
        self.throttle: dict[str, float] = {}
        self.throttle_chunk = 16384
        self.truncate: set[str] = set()
        self.extra_revisions: dict[str, set[str]] = {}
        self.requests: list[tuple[str, str]] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HubStandIn:
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

    def __enter__(self) -> HubStandIn:  # noqa: PYI034 -- start() returns the same object
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
