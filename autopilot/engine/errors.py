"""AWS-shaped errors of the engine: a `__type`, a message and the HTTP status the service uses."""

from __future__ import annotations


class EngineError(Exception):
    """An error answered to the client as ``{"__type": code, "Message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "Message": self.message}


def invalid_parameter(message: str) -> EngineError:
    return EngineError("InvalidParameterException", message)


def validation(message: str) -> EngineError:
    return EngineError("ValidationException", message)


def not_found(message: str) -> EngineError:
    return EngineError("ResourceNotFoundException", message)


def in_use(message: str) -> EngineError:
    return EngineError("ResourceInUseException", message)


def not_ready(message: str) -> EngineError:
    return EngineError("ResourceNotReadyException", message)


def already_exists(message: str) -> EngineError:
    return EngineError("ResourceAlreadyExistsException", message)


def limit_exceeded(message: str) -> EngineError:
    return EngineError("LimitExceededException", message)


def invalid_s3_object(message: str) -> EngineError:
    return EngineError("InvalidS3ObjectException", message)


def invalid_image_format(message: str) -> EngineError:
    return EngineError("InvalidImageFormatException", message)


def image_too_large(message: str) -> EngineError:
    return EngineError("ImageTooLargeException", message)


def invalid_pagination_token(message: str = "The NextToken is invalid or expired.") -> EngineError:
    return EngineError("InvalidPaginationTokenException", message)


def throttling(message: str = "Rate exceeded", status: int = 500) -> EngineError:
    """The API reference gives HTTP 500 for ThrottlingException (EngineConfig.throttling_status)."""
    return EngineError("ThrottlingException", message, status)


def internal(message: str = "Internal server error") -> EngineError:
    return EngineError("InternalServerError", message, status=500)


def unknown_operation(target: str) -> EngineError:
    return EngineError("UnknownOperationException", f"Operation {target!r} is not supported by this engine.")
