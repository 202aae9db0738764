"""Every exception the orchestrator raises, and the verdict each one carries.

Foreign exceptions (aiohttp's, OS errors while reading input) are translated into these in exactly
one place per dependency: ``orchestrator.api.transport`` for the network, the manifest readers
(``manifest``, ``manifest_json``, ``manifest_row``) and ``template`` for input files. Nothing else
catches aiohttp's exceptions.

Hierarchy::

    OrchestratorError
    ├── UserError                 the user can fix it; the CLI prints one line and exits 2
    │   ├── InputError            a file's content: names file, line, field
    │   │   ├── ManifestError
    │   │   │   └── ValidationFailed  pre-flight found problems (carries every problem line)
    │   │   └── TemplateError
    │   ├── ConfigError           a config key or environment variable
    │   ├── QuotaError            the account's video minutes or AI credits cannot fit the batch
    │   ├── CredentialsStop       a call not sent: the credentials were refused before; a run
    │   │                         stops admitting rows, each left as the ledger says (exit 1)
    │   └── RunDirError           the run directory is locked, or belongs to another manifest
    ├── StorageError              a write failed on the disk (no space, I/O error, read-only):
    │                             the run stops cleanly; exit 4 (``files.storage_error``)
    ├── RowStopped                one row stops early, its outcome already decided (not a failure)
    │   ├── RowAmbiguous          a render may exist that we cannot find; already recorded
    │   └── RowDeferred           the spend cap stopped it before its render: left pending
    └── ApiError                  a call to the Pictory API went wrong; carries a verdict
        ├── NotDeliveredError     the request never left (connection refused, DNS): retry
        ├── TransientError        5xx, read timeout on a safe request: retry with backoff
        │   └── JobStuckError     a job outlived its stage's deadline: fail the row, resumable
        ├── RateLimitedError      429: wait ``retry_after_s`` and slow down
        ├── AuthError             401: refresh the token once, then retry once
        │   └── CredentialsRefusedError  401 to an API key, or the token endpoint's refusal:
        │                         fail the call; the client remembers it (``tokens.Auth``)
        ├── PermanentError        4xx validation, 403, 404: fail the row with the API's message
        │   ├── JobFailedError    a job reported ``status: failed``
        │   └── JobLostError      the API no longer knows a recorded job (404 JOB_NOT_FOUND)
        ├── AmbiguousError        a job-creating request with an unknown fate: never resent
        ├── DownloadError         the video bytes were cut short or refused
        │   └── LinkExpiredError  video URL answered 403/404/410: re-read the job
        ├── NotAVideoError        the video URL answered HTML or bytes that are not ISO-BMFF
        ├── DeliveryError         an upload to the ``--deliver`` destination failed or did not
        │                         verify (network, 5xx, checksum): retry (``storage.s3`` and
        │                         ``storage.destination`` translate the store's errors)
        └── DeliveryRefusedError  the destination refused us (no such bucket, access denied,
                                  bad credentials): fail the row's delivery; the video is kept

    DamagedRecord (ValueError)    a stored ledger record that is not an event we wrote; the
                                  ledger that read it names where (``ledger_file``: file:line)
    NewerRecord (ValueError)      a stored ledger record a newer orchestrator wrote (a kind this
                                  version does not know, a run record of a newer format); the
                                  ledger that read it refuses it by name (RunDirError)
"""

from __future__ import annotations

import enum
from pathlib import Path


class OrchestratorError(Exception):
    """Base of everything we raise on purpose."""


class UserError(OrchestratorError):
    """A mistake the user can fix. Printed as one line; exit status 2."""


class InputError(UserError):
    """A problem inside an input file, located as precisely as we can."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.column = column
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
            where += ": "
        field = f"field {self.field!r}: " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{field}{self.message}{hint}"


class ManifestError(InputError):
    """The manifest cannot be read, or one of its rows is invalid."""


class TemplateError(InputError):
    """A .pictai template cannot be read or holds no usable project."""


class ConfigError(UserError):
    """A config file key, value or environment variable is wrong."""


class RunDirError(UserError):
    """The run directory cannot be used: locked by another run, or made for another manifest."""


class ApiError(OrchestratorError):
    """A Pictory API call failed. Subclasses carry the verdict; fields carry the context."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        error_code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.error_code = error_code
        self.retry_after_s = retry_after_s
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = [self.message]
        if self.endpoint:
            parts.append(f"endpoint={self.endpoint}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.error_code:
            parts.append(f"code={self.error_code}")
        return " ".join(parts)

    @property
    def kind(self) -> str:
        """Short class name used in the ledger and results (``transient``, ``permanent``...)."""
        return _KINDS.get(type(self), "error")


class NotDeliveredError(ApiError):
    retryable = True


class TransientError(ApiError):
    retryable = True


class JobStuckError(TransientError):
    pass


class RateLimitedError(ApiError):
    retryable = True


class AuthError(ApiError):
    retryable = True


class CredentialsRefusedError(AuthError):
    """A 401 no token refresh mends: the API refused the API key, or the token endpoint the
    client credentials. The call fails at once, and ``tokens.Auth`` remembers it: every later
    call of the client raises ``CredentialsStop`` instead of being sent."""

    retryable = False


class PermanentError(ApiError):
    retryable = False


class JobFailedError(PermanentError):
    pass


class JobLostError(PermanentError):
    pass


class AmbiguousError(ApiError):
    retryable = False


class DownloadError(ApiError):
    retryable = True


class LinkExpiredError(DownloadError):
    pass


class NotAVideoError(ApiError):
    """The video URL answered something that is not an MP4 (a web page, an error document).
    Never renamed into place; not retried blindly (the stage re-reads the job once)."""

    retryable = False


class DeliveryError(ApiError):
    """An upload to the delivery destination failed or its checksum did not verify: retried
    with the run's transfer policy; the downloaded video is kept, never rendered again."""

    retryable = True


class DeliveryRefusedError(ApiError):
    """The delivery destination refused the request (access denied, no such bucket): the row's
    delivery fails, not permanently (fix the destination, run again: only the upload is
    redone)."""

    retryable = False


_KINDS: dict[type[ApiError], str] = {
    ApiError: "error",
    NotDeliveredError: "not_delivered",
    TransientError: "transient",
    JobStuckError: "stuck",
    RateLimitedError: "rate_limited",
    AuthError: "auth",
    CredentialsRefusedError: "auth",
    PermanentError: "permanent",
    JobFailedError: "job_failed",
    JobLostError: "job_lost",
    AmbiguousError: "ambiguous",
    DownloadError: "download",
    LinkExpiredError: "link_expired",
    NotAVideoError: "not_a_video",
    DeliveryError: "delivery",
    DeliveryRefusedError: "delivery_refused",
}


class CredentialsStop(UserError):
    """A call not sent: the client's credentials were refused earlier (a
    ``CredentialsRefusedError``), so every call would be. Not an ApiError, so no row records a
    failure for it: a run stops admitting rows and leaves each where the ledger says
    (``run.execute``); anywhere else the CLI prints it in one line."""


class QuotaError(UserError):
    """The account's remaining video minutes (or AI credits) cannot fit the batch
    (``--check-quota``, ``run.cost``): nothing was rendered."""


class ValidationFailed(ManifestError):
    """Pre-flight found problems; nothing was sent. Carries every problem line."""

    def __init__(self, lines: list[str], total: int) -> None:
        self.lines = lines
        self.total = total
        super().__init__(f"{total} problem(s) in the manifest; nothing was sent")


class StorageError(OrchestratorError):
    """A write failed because of the disk, not the data: no space left, a quota, an I/O error, a
    read-only file system. Raised by ``files.storage_error`` (the one place an ``OSError`` from a
    write becomes this). A run that meets one stops admitting rows, leaves every row resumable,
    and exits with ``ExitCode.STORAGE``."""

    def __init__(self, path: Path | str, reason: str, hint: str) -> None:
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        super().__init__(f"{self.path}: {reason}; {hint}")


class RowStopped(OrchestratorError):
    """One row stops here without a failure to record; the pipeline ends it quietly."""


class RowAmbiguous(RowStopped):
    """The row stops here: a render may exist that we cannot find. Already recorded."""


class RowDeferred(RowStopped):
    """The row stops for now without failing (spend cap reached): left pending for a resume."""


class DamagedRecord(ValueError):
    """A stored record that is not an event we wrote: ``field`` names what is wrong (None: the
    record as a whole)."""

    def __init__(self, kind: str | None, field_name: str | None) -> None:
        self.kind = kind
        self.field = field_name
        super().__init__(
            f"field {field_name!r} of this {kind!r} event is missing or of the wrong type"
            if field_name
            else "this is not a ledger event"
        )


class NewerRecord(ValueError):
    """A stored ledger record that a newer orchestrator wrote: a ``run`` record whose ``format``
    is newer than this version reads (``format_found``), or an event of a kind this version does
    not know (``format_found`` None). Never skipped: an older version guessing at a newer ledger
    could render a video twice."""

    def __init__(self, kind: str, format_found: int | None) -> None:
        self.kind = kind
        self.format_found = format_found
        super().__init__(
            f"this ledger was written by a newer orchestrator (format {format_found})"
            if format_found is not None
            else f"event kind {kind!r} is unknown to this orchestrator"
        )


class LeaseLost(OrchestratorError):
    """A shared ledger's worker no longer holds a row (its lease expired and another worker
    took the row): it must drop the row, and nothing it tried to record was written."""

    def __init__(self, row: str, worker: str) -> None:
        self.row = row
        self.worker = worker
        super().__init__(f"row {row}: worker {worker} lost its lease; another worker has it")


class ExitCode(enum.IntEnum):
    """The process's exit code: the one list (``orchestrator --help`` and docs/cli.md show it)."""

    OK = 0
    """Every row done (or, for ``validate``/``doctor``, nothing to fix)."""
    NOT_ALL_DONE = 1
    """Some rows failed, are ambiguous or are still pending (another run or worker continues)."""
    USAGE = 2
    """Bad usage or input: nothing was sent."""
    AWAITING_APPROVAL = 3
    """A canary was rendered; the rest waits for ``orchestrator approve``."""
    STORAGE = 4
    """A disk fault (no space, I/O error, read-only) stopped the run; nothing is lost: free
    space, then run the same command again."""
    INTERRUPTED = 130
    """Ctrl-C or SIGTERM: run the same command again to resume."""
