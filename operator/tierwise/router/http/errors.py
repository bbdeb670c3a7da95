"""OpenAI-style error responses, and the one table that maps each kind to a status code.

Why it exists: every refusal the router makes — a malformed request, an unknown model, a
tier that is overloaded or gone — must reach the client as the error JSON the OpenAI SDKs
parse (``{"error": {"message", "type", "param", "code"}}``) with the right status, never a
traceback. The HTTP layer, the app and the fallback loop all answer through
:func:`send_error`; :data:`ERRORS` is the only place a kind becomes a status code.
"""

from __future__ import annotations

from enum import StrEnum

import orjson

from tierwise.router.http.server import Header, ResponseWriter

JSON: tuple[Header, ...] = (("content-type", "application/json"),)


class ErrorKind(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    UNKNOWN_MODEL = "unknown_model"
    NOT_FOUND = "not_found"
    METHOD = "method_not_allowed"
    TOO_LARGE = "too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    BAD_GATEWAY = "bad_gateway"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


# kind -> (status, OpenAI error type, code). The one place errors become status codes.
ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.BAD_REQUEST: (400, "invalid_request_error", "invalid_request"),
    ErrorKind.UNAUTHORIZED: (401, "invalid_request_error", "invalid_api_key"),
    ErrorKind.UNKNOWN_MODEL: (404, "invalid_request_error", "model_not_found"),
    ErrorKind.NOT_FOUND: (404, "invalid_request_error", "not_found"),
    ErrorKind.METHOD: (405, "invalid_request_error", "method_not_allowed"),
    ErrorKind.TOO_LARGE: (413, "invalid_request_error", "request_too_large"),
    ErrorKind.HEADERS_TOO_LARGE: (431, "invalid_request_error", "headers_too_large"),
    ErrorKind.OVERLOADED: (429, "rate_limit_error", "overloaded"),
    ErrorKind.UNAVAILABLE: (503, "server_error", "service_unavailable"),
    ErrorKind.BAD_GATEWAY: (502, "server_error", "upstream_error"),
    ErrorKind.TIMEOUT: (504, "server_error", "upstream_timeout"),
    ErrorKind.INTERNAL: (500, "server_error", "internal_error"),
}
_BY_STATUS = {status: kind for kind, (status, _t, _c) in ERRORS.items()}


def error_json(
    kind: ErrorKind, message: str, *, param: str | None = None, code: str | None = None
) -> bytes:
    _status, type_, default_code = ERRORS[kind]
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code or default_code}}
    )


def send_error(
    writer: ResponseWriter,
    kind: ErrorKind,
    message: str,
    *,
    headers: tuple[Header, ...] | list[Header] = (),
    retry_after: int | str | None = None,
    param: str | None = None,
    code: str | None = None,
) -> int:
    """Answer with an OpenAI-style error; return the status sent."""
    status = ERRORS[kind][0]
    extra = [*JSON, *headers]
    if retry_after is not None or status in (429, 503):
        extra.append(("retry-after", str(retry_after if retry_after is not None else 1)))
    writer.send(status, extra, error_json(kind, message, param=param, code=code))
    return status


def send_status_error(writer: ResponseWriter, status: int, message: str) -> None:
    """For the HTTP layer: a status (400, 413, 431, 500) as an OpenAI-style error."""
    send_error(writer, _BY_STATUS.get(status, ErrorKind.BAD_REQUEST), message)
