"""An in-process stand-in for the Lambda Invoke API that runs the application's real handlers.

moto's Lambda needs Docker, and its Step Functions interpreter invokes `lambda:invoke` tasks with
boto3. With AWS_ENDPOINT_URL_LAMBDA pointing at this service, those tasks (and any boto3 or AWS
CLI `lambda invoke`) run the registered Python handlers in this process:

    svc = LocalLambdaService()
    svc.register("Fn", handler="lambdas.ingestion.handler.handle", environment={...}, timeout_s=60)
    url = svc.start()          # http://127.0.0.1:<free port>
    ...
    svc.stop()

Only POST /2015-03-31/functions/{FunctionName}/invocations is served (RequestResponse, Event,
DryRun). Handler exceptions come back as on AWS: status 200, header X-Amz-Function-Error:
Unhandled, body {"errorMessage", "errorType", "stackTrace"}. Invocations are serialized because
os.environ (each function's environment) is process-wide.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import unquote

logger = logging.getLogger(__name__)

INVOKE_PATH_PREFIX = "/2015-03-31/functions/"
INVOKE_PATH_SUFFIX = "/invocations"


@dataclass
class LambdaContext:
    """The attributes handlers and Powertools read from the Lambda context object."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    timeout_s: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = (
            self.log_stream_name or f"local/[$LATEST]{self.aws_request_id.replace('-', '')}"
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class RegisteredFunction:
    name: str
    handler: str
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int
    arn: str
    aliases: tuple[str, ...] = ()


@dataclass
class Invocation:
    """One finished invocation: what the local runtime shows in its timeline and its tests assert."""

    function_name: str
    request_id: str
    invocation_type: str
    event: Any
    result: Any = None
    error: dict[str, Any] | None = None
    duration_s: float = 0.0


class FunctionNotFoundError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class LocalLambdaService:
    def __init__(
        self,
        account: str = "123456789012",
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        base_environment: dict[str, str] | None = None,
        capture_output: bool | TextIO = False,
    ) -> None:
        """`capture_output`: True keeps handler stdout (logs, metrics) in `.output`; a file receives it."""
        self.account = account
        self.region = region
        self.host = host
        self.base_environment = dict(base_environment or {})
        self.capture_output = bool(capture_output)
        self.invocations: list[Invocation] = []
        self.listeners: list[Callable[[Invocation], None]] = []
        # Entered around every handler run: the runtime's clock runs at real pace meanwhile.
        self.pace: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
        self._functions: dict[str, RegisteredFunction] = {}
        self._lock = threading.RLock()
        self._registry_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._async: list[threading.Thread] = []
        self._reserved: set[str] = set()
        self.output: TextIO = capture_output if not isinstance(capture_output, bool) else io.StringIO()
        # Set by the runtime when IAM is enforced: the scope a handler runs in (as its role).
        self.invocation_scope: Callable[[str], contextlib.AbstractContextManager[Any]] | None = None

    # -- registration ---------------------------------------------------------------------------
    def register(
        self,
        name: str,
        handler: str,
        environment: dict[str, str] | None = None,
        timeout_s: float = 60,
        memory_mb: int = 512,
        aliases: tuple[str, ...] = (),
    ) -> RegisteredFunction:
        """`handler` is "package.module.function"; `aliases` are other names it answers to."""
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        function = RegisteredFunction(
            name=name,
            handler=handler,
            environment={k: str(v) for k, v in (environment or {}).items()},
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            arn=arn,
            aliases=tuple(aliases),
        )
        with self._registry_lock:
            for key in (name, arn, *aliases):
                self._functions[key] = function
            self._reserve([*self.base_environment, *function.environment])
        return function

    def functions(self) -> list[RegisteredFunction]:
        unique = {id(fn): fn for fn in self._functions.values()}
        return list(unique.values())

    def lookup(self, function_name: str) -> RegisteredFunction:
        """Accepts a name, a full or partial ARN, with or without a version/alias qualifier."""
        candidates = [function_name]
        if function_name.startswith("arn:"):
            parts = function_name.split(":")
            if len(parts) >= 7:
                candidates.append(parts[6])
        elif ":function:" in function_name:
            candidates.append(function_name.split(":function:", 1)[1].split(":", 1)[0])
        elif ":" in function_name:
            candidates.append(function_name.split(":", 1)[0])
        with self._registry_lock:
            for candidate in candidates:
                if candidate in self._functions:
                    return self._functions[candidate]
        raise FunctionNotFoundError(
            f"Function not found: arn:aws:lambda:{self.region}:{self.account}:function:{function_name}"
        )

    # -- invocation -----------------------------------------------------------------------------
    def invoke(self, function_name: str, event: Any, invocation_type: str = "RequestResponse") -> Invocation:
        """Runs the handler now, in this thread; never raises for handler errors (see .error)."""
        function = self.lookup(function_name)
        request_id = str(uuid.uuid4())
        record = Invocation(function.name, request_id, invocation_type, event)
        context = LambdaContext(
            function_name=function.name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.memory_mb,
            aws_request_id=request_id,
            timeout_s=function.timeout_s,
        )
        started = time.monotonic()
        with self._lock, self.pace(), self._environment(function), self._captured():
            scope = self.invocation_scope
            try:
                handler = _load_handler(function.handler)
                with scope(function.name) if scope is not None else contextlib.nullcontext():
                    record.result = handler(event, context)
            except Exception as error:  # the Lambda runtime reports every handler error
                record.error = {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "requestId": request_id,
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
                logger.info("function %s failed: %s: %s", function.name, type(error).__name__, error)
        record.duration_s = time.monotonic() - started
        self.invocations.append(record)
        for listener in list(self.listeners):
            listener(record)
        return record

    def invoke_async(self, function_name: str, event: Any) -> None:
        self.lookup(function_name)  # unknown functions fail at once, as on AWS
        thread = threading.Thread(
            target=self.invoke,
            args=(function_name, event, "Event"),
            name=f"lambda-{function_name}",
            daemon=True,
        )
        self._async = [t for t in self._async if t.is_alive()] + [thread]
        thread.start()

    def wait_async(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in list(self._async):
            thread.join(max(0.0, deadline - time.monotonic()))

    @contextlib.contextmanager
    def _environment(self, function: RegisteredFunction) -> Iterator[None]:
        # Other threads (the pump, boto3 creating clients, the CLI) iterate os.environ; adding or
        # removing keys while they do raises. Every key was therefore added once at registration
        # (see _reserve) and only values change here. AWS_LAMBDA_* variables are not set at all:
        # botocore checks AWS_LAMBDA_FUNCTION_NAME and would see them from every thread.
        values = {**self.base_environment, **function.environment}
        saved = {key: os.environ.get(key, "") for key in values}
        for key, value in values.items():
            os.environ[key] = value
        try:
            yield
        finally:
            for key, previous in saved.items():
                os.environ[key] = previous

    def _reserve(self, keys: Iterator[str] | list[str]) -> None:
        """Adds absent keys (empty) before any concurrent use; removed again by stop()."""
        for key in keys:
            if key not in os.environ:
                os.environ[key] = ""
                self._reserved.add(key)

    def release_environment(self) -> None:
        """Removes the keys reserved for the functions; call once nothing runs any more."""
        for key in sorted(self._reserved):
            os.environ.pop(key, None)
        self._reserved.clear()

    @contextlib.contextmanager
    def _captured(self) -> Iterator[None]:
        """Routes this thread's stdout (handler logs, EMF metrics) to `.output` while it runs.

        sys.stdout is replaced once by a router that picks the target per thread, so output of
        other threads (the CLI, the demo's timeline) is never swallowed or mixed in.
        """
        if not self.capture_output:
            yield
            return
        router = _StdoutRouter.install()
        router.routes[threading.get_ident()] = self.output
        try:
            yield
        finally:
            router.routes.pop(threading.get_ident(), None)

    # -- HTTP server ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Lambda service is not started")
        port = self._server.server_address[1]
        return f"http://{self.host}:{port}"

    def start(self, port: int = 0) -> str:
        if self._server is not None:
            return self.url
        service = self

        class Handler(_InvokeHandler):
            lambda_service = service

        self._server = ThreadingHTTPServer((self.host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-lambda", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self.capture_output:
            _StdoutRouter.uninstall()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalLambdaService:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


class _StdoutRouter(io.TextIOBase):
    """A sys.stdout that writes to a per-thread target, or to the original stdout."""

    routes: dict[int, TextIO]

    def __init__(self, original: TextIO) -> None:
        super().__init__()
        self.original = original
        self.routes = {}

    @classmethod
    def install(cls) -> _StdoutRouter:
        current = sys.stdout
        if isinstance(current, _StdoutRouter):
            return current
        router = cls(current)
        sys.stdout = router
        return router

    @classmethod
    def uninstall(cls) -> None:
        current = sys.stdout
        if isinstance(current, _StdoutRouter) and not current.routes:
            sys.stdout = current.original

    def _target(self) -> TextIO:
        return self.routes.get(threading.get_ident(), self.original)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


_HANDLER_CACHE: dict[str, Callable[..., Any]] = {}


def _load_handler(path: str) -> Callable[..., Any]:
    if path not in _HANDLER_CACHE:
        module_name, _, attribute = path.rpartition(".")
        if not module_name:
            raise ImportError(f"handler {path!r} must be 'module.function'")
        module = importlib.import_module(module_name)
        _HANDLER_CACHE[path] = getattr(module, attribute)
    return _HANDLER_CACHE[path]


class _InvokeHandler(BaseHTTPRequestHandler):
    lambda_service: LocalLambdaService
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("lambda service: " + format, *args)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not (path.startswith(INVOKE_PATH_PREFIX) and path.endswith(INVOKE_PATH_SUFFIX)):
            self._error(404, "UnknownOperationException", f"unsupported path {path}")
            return
        name = unquote(path[len(INVOKE_PATH_PREFIX) : -len(INVOKE_PATH_SUFFIX)])
        invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            self._error(400, "InvalidRequestContentException", "Could not parse request body into json")
            return
        service = self.lambda_service
        try:
            service.lookup(name)
        except FunctionNotFoundError as missing:
            self._error(404, "ResourceNotFoundException", str(missing))
            return
        if invocation_type == "DryRun":
            self._send(204, b"")
            return
        if invocation_type == "Event":
            service.invoke_async(name, event)
            self._send(202, b"")
            return
        if invocation_type != "RequestResponse":
            self._error(
                400, "InvalidParameterValueException", f"invalid X-Amz-Invocation-Type {invocation_type}"
            )
            return
        record = service.invoke(name, event)
        headers = {"X-Amz-Executed-Version": "$LATEST", "X-Amz-Request-Id": record.request_id}
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            tail = f"START RequestId: {record.request_id}\nEND RequestId: {record.request_id}\n"
            headers["X-Amz-Log-Result"] = base64.b64encode(tail.encode()).decode()
        if record.error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
            payload = json.dumps(record.error).encode()
        else:
            payload = json.dumps(record.result, default=str).encode()
        self._send(200, payload, headers)

    def _error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._send(status, body, {"x-amzn-ErrorType": error_type})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)
