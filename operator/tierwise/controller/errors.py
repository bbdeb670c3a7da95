"""The one place errors become kopf's two kinds: permanent or temporary.

* An invalid spec (the plan's outcome ``invalid``) is permanent: the Degraded condition
  and an event already say what to fix, and retrying cannot help until the spec changes.
* A dependency not there yet (``waiting``), a conflict, throttling or a server error
  (409, 429, 5xx), credentials the server no longer accepts (401: a token rotated while
  the client was re-resolving it) and connection failures are temporary, retried after a
  delay.
* Any other API error (a 4xx the server will repeat, e.g. 422 on a bad object) is
  permanent: it is a bug or an admission policy, and a retry loop would only spam.
"""

from __future__ import annotations

import asyncio

import aiohttp
import kopf

from tierwise.controller.kube import ApiError
from tierwise.controller.plan import Outcome, Plan

RETRY_DELAY_S = 5.0
THROTTLE_DELAY_S = 10.0
_RETRIABLE = frozenset({401, 409, 429, 500, 502, 503, 504})


def raise_for_plan(plan: Plan) -> None:
    """Turn a plan's outcome into kopf's verdict (returns for ``ok``)."""
    message = "; ".join(str(p) for p in plan.problems)
    if plan.outcome is Outcome.INVALID:
        raise kopf.PermanentError(message)
    if plan.outcome is Outcome.WAITING:
        raise kopf.TemporaryError(message, delay=plan.retry_after or RETRY_DELAY_S)


def error_label(exc: BaseException) -> str:
    """A short label for metrics: the HTTP status, or the exception's type."""
    if isinstance(exc, ApiError):
        return str(exc.status)
    return type(exc).__name__


def to_kopf(exc: BaseException) -> kopf.PermanentError | kopf.TemporaryError:
    """The kopf error an exception from observe/execute should become."""
    if isinstance(exc, ApiError):
        if exc.status == 429:
            return kopf.TemporaryError(str(exc), delay=THROTTLE_DELAY_S)
        if exc.status in _RETRIABLE or exc.status >= 500:
            return kopf.TemporaryError(str(exc), delay=RETRY_DELAY_S)
        return kopf.PermanentError(str(exc))
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError):
        return kopf.TemporaryError(f"API server unreachable: {exc!r}", delay=RETRY_DELAY_S)
    return kopf.TemporaryError(f"unexpected error: {exc!r}", delay=RETRY_DELAY_S)
