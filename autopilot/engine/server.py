"""The HTTP side: Rekognition JSON 1.1 protocol over werkzeug, plus the /_engine control routes."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from autopilot.engine import errors
from autopilot.engine.backend import Engine
from autopilot.engine.config import EngineConfig
from autopilot.engine.faults import FaultInjector
from autopilot.engine.operations import handle

LOG = logging.getLogger("autopilot.engine.server")

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def region_of(request: Request, default: str) -> str:
    """The region of the SigV4 credential scope (Authorization header), or the default."""
    match = _SCOPE.search(request.headers.get("Authorization", ""))
    return match.group(1) if match else default


class EngineApp:
    """The WSGI application: dispatches Rekognition operations and the engine's own control routes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.respond(request)
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.path.startswith("/_engine/"):
            return self._control(request)
        request_id = str(uuid.uuid4())
        target = request.headers.get("X-Amz-Target", "")
        try:
            if request.method != "POST" or not target.startswith(TARGET_PREFIX):
                raise errors.EngineError(
                    "UnknownOperationException",
                    "Send POST requests with X-Amz-Target: RekognitionService.<Operation> "
                    "(JSON 1.1 protocol).",
                )
            raw = request.get_data()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise errors.EngineError(
                    "SerializationException", f"The request body is not JSON: {exc}"
                ) from exc
            operation = target[len(TARGET_PREFIX) :]
            result = handle(
                self.engine, operation, body, region_of(request, self.engine.config.default_region)
            )
            return self._json(200, result, request_id)
        except errors.EngineError as exc:
            return self._json(exc.status, exc.body(), request_id, error=exc.code)
        except Exception as exc:
            LOG.exception("unexpected error in %s", target)
            error = errors.internal(f"Unexpected engine error: {exc}")
            return self._json(error.status, error.body(), request_id, error=error.code)

    @staticmethod
    def _json(status: int, payload: dict[str, Any], request_id: str, error: str | None = None) -> Response:
        response = Response(json.dumps(payload), status=status, content_type=CONTENT_TYPE)
        response.headers["x-amzn-RequestId"] = request_id
        if error:
            response.headers["x-amzn-ErrorType"] = error
        return response

    def _control(self, request: Request) -> Response:
        faults: FaultInjector = self.engine.faults
        if request.path == "/_engine/health":
            return Response(json.dumps({"status": "ok"}), content_type="application/json")
        if request.path == "/_engine/faults":
            if request.method == "GET":
                return Response(json.dumps({"faults": faults.list()}), content_type="application/json")
            if request.method == "DELETE":
                faults.clear()
                return Response(json.dumps({"faults": []}), content_type="application/json")
            if request.method == "POST":
                try:
                    body = json.loads(request.get_data() or b"{}")
                    items = body if isinstance(body, list) else [body]
                    for item in items:
                        if not isinstance(item, dict):
                            raise ValueError("Each fault must be a JSON object.")
                        faults.from_json(item)
                except (ValueError, TypeError) as exc:
                    return Response(
                        json.dumps({"error": str(exc)}), status=400, content_type="application/json"
                    )
                return Response(json.dumps({"faults": faults.list()}), content_type="application/json")
        return Response(json.dumps({"error": "not found"}), status=404, content_type="application/json")


class _QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log instead of stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        LOG.debug("%s %s %s", self.command, self.path, code)


def _make(host: str, port: int, engine: Engine) -> BaseWSGIServer:
    server = make_server(host, port, EngineApp(engine), threaded=True, request_handler=_QuietHandler)
    server.daemon_threads = True  # type: ignore[attr-defined]  # ThreadedWSGIServer (threaded=True)
    return server


class EngineServer:
    """The engine behind a threaded HTTP server, started in a background thread.

    >>> server = EngineServer(EngineConfig(time_scale=0.01))
    >>> url = server.start(host="127.0.0.1", port=0)   # doctest: +SKIP
    >>> server.stop()                                   # doctest: +SKIP
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.engine = Engine(self.config)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    @property
    def faults(self) -> FaultInjector:
        return self.engine.faults

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._server is not None:
            raise RuntimeError("The engine server is already started.")
        self._server = _make(host, port, self.engine)
        actual_port = self._server.socket.getsockname()[1]
        self.url = f"http://{host}:{actual_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="engine-http", daemon=True
        )
        self._thread.start()
        return self.url

    def serve_forever(self, host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
        """Serves in the calling thread (the CLI) until interrupted; ``on_ready`` gets the URL."""
        self._server = _make(host, port, self.engine)
        self.url = f"http://{host}:{self._server.socket.getsockname()[1]}"
        if on_ready is not None:
            on_ready(self.url)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None

    def stop(self, wait_for_training: float | None = 0.0) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if wait_for_training:
            self.engine.wait_for_background(wait_for_training)

    def __enter__(self) -> EngineServer:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
