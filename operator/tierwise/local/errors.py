"""API errors with the status codes and reasons a real API server uses.

kmock renders any :class:`kmock.KubernetesError` as a ``kind: Status`` body; the
helpers here pick the code and ``reason`` clients branch on (kopf treats 409 and
422 differently, the kubernetes client raises ``ApiException`` with the code).
"""

from __future__ import annotations

from typing import Any

import kmock

REASONS = {
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
"""The ``reason`` a real API server gives with each status (for injected faults)."""


def api_error(status: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=status, reason=reason, message=message, details=details or {"causes": []}
    )


def not_found(kind: str, name: str | None) -> kmock.KubernetesError:
    return api_error(404, "NotFound", f'{kind} "{name}" not found', name=name, kind=kind)


def resource_not_found() -> kmock.KubernetesError:
    return api_error(404, "NotFound", "the server could not find the requested resource")


def already_exists(kind: str, name: str) -> kmock.KubernetesError:
    return api_error(409, "AlreadyExists", f'{kind} "{name}" already exists', name=name, kind=kind)


def conflict(kind: str, name: str) -> kmock.KubernetesError:
    message = (
        f'Operation cannot be fulfilled on {kind} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return api_error(409, "Conflict", message, name=name, kind=kind)


def apply_conflict(message: str, causes: list[dict[str, str]]) -> kmock.KubernetesError:
    """409 from server-side apply: fields another manager owns (one cause per field)."""
    return api_error(409, "Conflict", message, causes=causes)


def invalid(kind: str, name: str | None, message: str) -> kmock.KubernetesError:
    return api_error(422, "Invalid", f'{kind} "{name}" is invalid: {message}', name=name, kind=kind)


def bad_request(message: str) -> kmock.KubernetesError:
    return api_error(400, "BadRequest", message)


def gone(message: str) -> kmock.KubernetesError:
    return api_error(410, "Expired", message)


def unsupported_media_type(content_type: str) -> kmock.KubernetesError:
    return api_error(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown "
        f"format - accepted media types include: {content_type}",
    )


def method_not_allowed(method: str) -> kmock.KubernetesError:
    return api_error(405, "MethodNotAllowed", f"the server does not allow this method ({method})")
