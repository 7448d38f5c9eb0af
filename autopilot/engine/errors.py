"""AWS-shaped errors of the engine: a `__type`, a message and the HTTP status the service uses."""

from __future__ import annotations

from collections.abc import Callable


class EngineError(Exception):
    """An error answered to the client as ``{"__type": code, "Message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "Message": self.message}


def _client_error(code: str) -> Callable[[str], EngineError]:
    """A factory of the HTTP 400 error `code`."""

    def make(message: str) -> EngineError:
        return EngineError(code, message)

    make.__name__ = code
    return make


invalid_parameter = _client_error("InvalidParameterException")
validation = _client_error("ValidationException")
not_found = _client_error("ResourceNotFoundException")
in_use = _client_error("ResourceInUseException")
not_ready = _client_error("ResourceNotReadyException")
already_exists = _client_error("ResourceAlreadyExistsException")
limit_exceeded = _client_error("LimitExceededException")
invalid_s3_object = _client_error("InvalidS3ObjectException")
invalid_image_format = _client_error("InvalidImageFormatException")
image_too_large = _client_error("ImageTooLargeException")


def invalid_pagination_token(message: str = "The NextToken is invalid or expired.") -> EngineError:
    return EngineError("InvalidPaginationTokenException", message)


def throttling(message: str = "Rate exceeded", status: int = 500) -> EngineError:
    """The API reference gives HTTP 500 for ThrottlingException (EngineConfig.throttling_status)."""
    return EngineError("ThrottlingException", message, status)


def internal(message: str = "Internal server error") -> EngineError:
    return EngineError("InternalServerError", message, status=500)


def unknown_operation(target: str) -> EngineError:
    return EngineError("UnknownOperationException", f"Operation {target!r} is not supported by this engine.")
