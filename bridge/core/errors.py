"""One error hierarchy for the bridge.

Every error carries a stable code (``BRIDGE-NNNN``, never reused), an HTTP status and a
FHIR ``OperationOutcome.issue.code``. ``bridge.api.errors`` renders them once; nothing
below ``bridge.api`` raises ``HTTPException``. ``docs/errors.md`` lists every code (tested).
"""

from __future__ import annotations

from typing import Any, ClassVar


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    code: ClassVar[str] = "BRIDGE-0000"
    status: ClassVar[int] = 500
    fhir_issue: ClassVar[str] = "exception"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        """Return the error as plain data (for logs, dead letters and problem bodies)."""
        data: dict[str, Any] = {"code": self.code, "title": self.title, "detail": self.detail}
        if self.field:
            data["field"] = self.field
        data.update(self.extra)
        return data


class ConfigurationError(BridgeError):
    """The configuration is missing something or is unsafe for the chosen mode."""

    code = "BRIDGE-0001"
    status = 500
    fhir_issue = "exception"
    title = "Configuration error"


class ValidationError(BridgeError):
    """Input does not have the required shape; ``field`` names where."""

    code = "BRIDGE-0100"
    status = 422
    fhir_issue = "invalid"
    title = "Invalid input"


class FhirValidationError(ValidationError):
    """A FHIR resource failed validation; ``field`` is the element path."""

    code = "BRIDGE-0101"
    title = "Invalid FHIR resource"


class UnknownResourceTypeError(ValidationError):
    """The resource type is not a FHIR R4 type this bridge stores."""

    code = "BRIDGE-0102"
    status = 404
    fhir_issue = "not-supported"
    title = "Unknown resource type"


class InvalidIdentifierError(ValidationError):
    """An identifier (NHS number, resource id) is malformed."""

    code = "BRIDGE-0103"
    title = "Invalid identifier"


class RequestTooLargeError(BridgeError):
    """The request body is larger than the configured limit."""

    code = "BRIDGE-0104"
    status = 413
    fhir_issue = "too-costly"
    title = "Request too large"


class MalformedBodyError(ValidationError):
    """The request body is not parseable JSON of the expected kind."""

    code = "BRIDGE-0105"
    status = 400
    fhir_issue = "structure"
    title = "Malformed request body"


class MethodNotAllowedError(BridgeError):
    """The path exists but does not support the HTTP method used."""

    code = "BRIDGE-0106"
    status = 405
    fhir_issue = "not-supported"
    title = "Method not allowed"


class NotFoundError(BridgeError):
    """The requested object does not exist or is not visible to the caller."""

    code = "BRIDGE-0200"
    status = 404
    fhir_issue = "not-found"
    title = "Not found"


class GoneError(BridgeError):
    """The resource existed and was deleted; its history is kept."""

    code = "BRIDGE-0201"
    status = 410
    fhir_issue = "deleted"
    title = "Gone"


class VersionConflictError(BridgeError):
    """The write named a version that is no longer current."""

    code = "BRIDGE-0202"
    status = 412
    fhir_issue = "conflict"
    title = "Version conflict"


class AuthenticationError(BridgeError):
    """No valid bearer token: missing, malformed, expired or wrongly signed."""

    code = "BRIDGE-0300"
    status = 401
    fhir_issue = "login"
    title = "Authentication required"


class PermissionDeniedError(BridgeError):
    """The caller's role does not allow this action."""

    code = "BRIDGE-0301"
    status = 403
    fhir_issue = "forbidden"
    title = "Forbidden"


class AccessDeniedError(PermissionDeniedError):
    """The sharing policy lets the caller see nothing of this person; ``reasons`` say why."""

    code = "BRIDGE-0302"
    title = "Access to this person refused"


class CryptoError(BridgeError):
    """A stored value could not be decrypted or a key is missing."""

    code = "BRIDGE-0400"
    status = 500
    fhir_issue = "exception"
    title = "Encryption key problem"


class StoreError(BridgeError):
    """The database refused or lost an operation."""

    code = "BRIDGE-0500"
    status = 503
    fhir_issue = "transient"
    title = "Storage unavailable"


class MappingError(BridgeError):
    """A source record could not be mapped to FHIR; names the spec, rule and source field."""

    code = "BRIDGE-0600"
    status = 422
    fhir_issue = "processing"
    title = "Mapping failed"

    def __init__(
        self,
        detail: str,
        *,
        spec: str | None = None,
        rule: str | None = None,
        source_field: str | None = None,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        named = {"spec": spec, "rule": rule, "source_field": source_field}
        super().__init__(
            detail,
            field=field or source_field,
            extra={**{k: v for k, v in named.items() if v}, **(extra or {})},
        )
        self.spec = spec
        self.rule = rule
        self.source_field = source_field


class MappingSpecError(BridgeError):
    """A mapping spec, concept map or mapping configuration file is invalid."""

    code = "BRIDGE-0601"
    status = 422
    fhir_issue = "invalid"
    title = "Invalid mapping spec"

    def __init__(
        self,
        detail: str,
        *,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        named = {"file": file, "line": line, "hint": hint}
        super().__init__(
            detail,
            field=field,
            extra={**{k: v for k, v in named.items() if v}, **(extra or {})},
        )
        self.file = file
        self.line = line
        self.hint = hint


def all_error_types() -> list[type[BridgeError]]:
    """Return every concrete error class, base first (used by docs and shape tests)."""
    seen: list[type[BridgeError]] = []
    stack: list[type[BridgeError]] = [BridgeError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
