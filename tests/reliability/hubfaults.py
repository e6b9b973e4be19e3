"""The hub stand-in with two more fault modes for the matrix: an HTTP status injected per file
(5xx) and a stall before the answer (a slow server, for client timeouts)."""

from __future__ import annotations

import http.server
import threading

from zoo.testing.hub import HubStandIn, _Handler


class _FaultyHandler(_Handler):
    def _route(self) -> None:
        hub: FaultyHub = self.server.hub  # type: ignore[attr-defined]
        name = self.path.split("?", 1)[0].rsplit("/", 1)[-1]
        if name in hub.status:
            hub.requests.append((self.command, self.path))
            return self._error(hub.status[name], "Injected", f"injected HTTP {hub.status[name]}")
        if name in hub.stall:
            threading.Event().wait(hub.stall[name])  # not time.sleep: tests patch it to skip client back-off
        return super()._route()

    do_GET = _route
    do_HEAD = _route


class FaultyHub(HubStandIn):
    """:class:`~zoo.testing.hub.HubStandIn` plus ``status`` ({file name: HTTP status}) and ``stall``
    ({file name: seconds to wait before answering})."""

    def __init__(self, root):
        super().__init__(root)
        self.status: dict[str, int] = {}
        self.stall: dict[str, float] = {}

    def start(self) -> FaultyHub:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FaultyHandler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self
