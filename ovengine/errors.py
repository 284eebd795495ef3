"""Engine errors. They become REST faults (status, reason, detail) at the edge."""

from __future__ import annotations

__all__ = ["EngineError", "ValidationFailed", "NotFound", "Conflict", "Locked", "Forbidden",
           "Unauthorized", "OperationFailed"]


class EngineError(Exception):
    http_status = 500
    reason = "Operation Failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ValidationFailed(EngineError):
    """Bad input: names the field (400)."""

    http_status = 400
    reason = "Operation Failed"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class NotFound(EngineError):
    http_status = 404
    reason = "Not Found"


class Conflict(EngineError):
    """The entity is in a state that forbids the action (409)."""

    http_status = 409
    reason = "Operation Failed"


class Locked(Conflict):
    """Another command holds the entity (409)."""


class Forbidden(EngineError):
    http_status = 403
    reason = "Forbidden"


class Unauthorized(EngineError):
    http_status = 401
    reason = "Unauthorized"


class OperationFailed(EngineError):
    """The action was valid but failed while running (e.g. the host refused)."""

    http_status = 500
    reason = "Operation Failed"
