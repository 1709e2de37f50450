"""Errors of the router. Each carries the `ErrorCode` the HTTP front answers with."""

from __future__ import annotations

from agentflow.llm import ErrorCode


class Error(Exception):
    """Root of every router error."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(Error):
    """The request is malformed; the message names the field and the reason."""

    code = ErrorCode.INVALID_REQUEST


class BodyTooLarge(Error):
    """The request body is larger than `max_body_size`."""

    code = ErrorCode.BODY_TOO_LARGE


class ModelNotFound(Error):
    """No deployment serves the requested model."""

    code = ErrorCode.MODEL_NOT_FOUND


class NoProvider(Error):
    """No provider is configured at all."""

    code = ErrorCode.NO_PROVIDER


class BudgetExceeded(Error):
    """The call's estimate would take its attempt past the grant."""

    def __init__(self, message: str, *, tokens: bool) -> None:
        super().__init__(message)
        self.code = ErrorCode.BUDGET_EXCEEDED_TOKENS if tokens else ErrorCode.BUDGET_EXCEEDED_USD


class UpstreamError(Error):
    """A provider call failed; `retryable` says whether another try or a fallback may help."""

    code = ErrorCode.UPSTREAM_ERROR
    retryable = True

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RateLimited(UpstreamError):
    """The provider answered 429."""

    code = ErrorCode.RATE_LIMITED


class UpstreamUnavailable(UpstreamError):
    """The provider could not be reached (connection refused, DNS), or its breaker is open."""

    code = ErrorCode.UPSTREAM_UNAVAILABLE


class UpstreamTimeout(UpstreamError):
    """The provider did not answer in time."""

    code = ErrorCode.UPSTREAM_TIMEOUT


class ContextLengthExceeded(UpstreamError):
    """The prompt is too long for this model; a fallback with a larger window may take it."""

    code = ErrorCode.CONTEXT_LENGTH


class UpstreamRejected(UpstreamError):
    """The provider refused the request itself (4xx other than 429): no retry, no fallback."""

    code = ErrorCode.UPSTREAM_REJECTED
    retryable = False
