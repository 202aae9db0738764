"""What the Pictory API answers, parsed into our own small models.

Every quirk of ``../shared/pictory-api.md`` is understood here and nowhere else:

- from-template answers ``data.jobId``; render answers ``data.job_id``; storyboard may answer a
  top-level ``jobId``;
- a finished preview in the legacy shape has no ``status``: done = ``status == "completed"`` or
  ``renderParams`` present;
- a finished render's video is ``videoURL`` only; ``shareVideoURL`` / ``videoShareURL`` are
  viewing pages (§5.5) and are never taken for the video;
- a transcription or highlights job (§5.1, §5.2) answers ``data.transcript`` (sentences with
  ``words[]``, kept exactly as sent: a highlights request must carry it unchanged) and, for a
  transcription, the subtitle files ``srt``/``vtt``/``txt`` as contents and ``mediaInfo``;
- a finished render offers ``srtFile``/``vttFile``/``txtFile`` (§2 step 6) in an unpublished
  form: any non-empty string is kept (a URL to download, or the file's contents);
- a finished render also tells (§6.2), each read if present and of a usable type, else left
  out: ``thumbnail`` (a JPEG URL), the share page (``videoShareURL``, else ``shareVideoURL``),
  ``videoDuration`` (float seconds; a numeric string is read too) and ``aiCreditsUsed``;
- a failed job answers ``success: false`` with ``data.status == "failed"``, ``error_code`` (e.g.
  ``TEXT_TO_VIDEO_FAILED``) and ``error_message`` naming the cause, both kept verbatim;
- a template answer spells its deprecation flag ``deprecated`` (create, list) or ``depricated``
  (get, per its doc page): either is read.

``answer_body`` is the one place an HTTP status becomes our exception (``orchestrator.errors``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.errors import (
    ApiError,
    AuthError,
    JobLostError,
    PermanentError,
    RateLimitedError,
    TransientError,
)

if TYPE_CHECKING:  # the transport's plain answer record; importing it would import aiohttp
    from orchestrator.api.transport import Answer

JobStatus = Literal["pending", "in-progress", "completed", "failed", "cleaned"]
KNOWN_STATUSES = frozenset({"", "pending", "in-progress", "completed", "failed", "cleaned"})
"""§5.4: ``cleaned`` = the job's results were deleted (retention, or ``DELETE …/clean``); any
other value is unknown to us and read as still running, under the stage's deadline."""

_VIDEO_URL_KEYS = ("videoURL",)
"""The MP4 (§5.5). ``shareVideoURL`` / ``videoShareURL`` are viewing pages: never downloaded."""
_SHARE_URL_KEYS = ("videoShareURL", "shareVideoURL")
"""The viewing page (§5.5): render jobs say ``videoShareURL``, legacy jobs ``shareVideoURL``."""
_DEPRECATED_KEYS = ("deprecated", "depricated")
"""The template answer's flag, in either spelling (§3, §6; the get-template page: "API uses
'depricated' spelling")."""
_SUBTITLE_KEYS = ("srtFile", "vttFile", "txtFile")
_TEXT_KEYS = ("srt", "vtt", "txt")


@dataclass(frozen=True, slots=True)
class JobState:
    """One reading of ``GET /v1/jobs/{id}`` (or a webhook carrying the same JSON)."""

    job_id: str
    status: JobStatus
    progress_pct: float | None = None
    preview_url: str | None = None
    render_params: dict[str, Any] | None = None
    video_url: str | None = None
    video_duration_s: float | None = None
    subtitle_urls: dict[str, str] = field(default_factory=dict)
    """A render's ``srtFile``/``vttFile``/``txtFile``: a URL, or the contents themselves."""
    thumbnail_url: str | None = None
    """A render's ``thumbnail`` (a JPEG URL, §6.2)."""
    share_url: str | None = None
    """A render's viewing page: ``videoShareURL`` or ``shareVideoURL`` (§5.5); never downloaded."""
    ai_credits: float | None = None
    """A render's ``aiCreditsUsed`` (§6.2)."""
    transcript: list[dict[str, Any]] | None = None
    """A transcription's or highlights job's ``data.transcript``, unchanged (§5.1, §5.2)."""
    subtitle_texts: dict[str, str] = field(default_factory=dict)
    """A transcription's ``srt``/``vtt``/``txt``: file contents, not URLs (§5.2)."""
    media_duration_s: float | None = None
    """A transcription's ``mediaInfo.duration`` (keys unpublished, §5.2: read if present)."""
    error_code: str | None = None
    error_message: str | None = None
    unknown_status: str | None = None
    """A ``status`` value §5.4 does not list (read as running), to be logged once."""

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cleaned")

    @property
    def subtitle_links(self) -> dict[str, str]:
        """Those of ``subtitle_urls`` that are links (http or https), not a file's contents."""
        return {
            k: v for k, v in self.subtitle_urls.items() if v.startswith(("https://", "http://"))
        }


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    template_id: str
    variables: dict[str, str]
    deprecated: bool = False
    """The template is marked deprecated (``deprecated`` or ``depricated``, either spelling)."""


def _data(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict):
            return data
    return {}


def created_job_id(body: Any) -> str | None:
    """The new job's id from any create answer: ``data.jobId``, ``data.job_id`` or ``jobId``."""
    data = _data(body)
    for source in (data, body if isinstance(body, dict) else {}):
        for key in ("jobId", "job_id"):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def parse_template(body: Any) -> TemplateInfo | None:
    """The bare template object answered by ``POST /v1/templates``."""
    if not isinstance(body, dict):
        return None
    template_id = body.get("templateId")
    if not isinstance(template_id, str) or not template_id:
        return None
    variables = body.get("variables")
    return TemplateInfo(
        template_id=template_id,
        variables={str(k): str(v) for k, v in variables.items()}
        if isinstance(variables, dict)
        else {},
        deprecated=any(body.get(k) is True for k in _DEPRECATED_KEYS),
    )


def parse_job(job_id: str, body: Any) -> JobState:
    """Interpret a job answer in either the legacy or the current shape."""
    data = _data(body)
    status = str(data.get("status") or "").lower()
    failed = status == "failed" or (isinstance(body, dict) and body.get("success") is False)
    if failed:
        return JobState(
            job_id=job_id,
            status="failed",
            error_code=_str_or_none(data.get("error_code")),
            error_message=_str_or_none(data.get("error_message")),
        )
    video_url = next((data[k] for k in _VIDEO_URL_KEYS if _nonempty_str(data.get(k))), None)
    render_params = data.get("renderParams")
    transcript = _items(data.get("transcript"))
    legacy_done = isinstance(render_params, dict) or (not status and transcript is not None)
    completed = status == "completed" or legacy_done
    if completed:
        return JobState(
            job_id=job_id,
            status="completed",
            progress_pct=100.0,
            preview_url=_str_or_none(data.get("preview")),
            render_params=render_params if isinstance(render_params, dict) else None,
            video_url=video_url,
            video_duration_s=_float_or_none(data.get("videoDuration")),
            subtitle_urls={k: data[k] for k in _SUBTITLE_KEYS if _nonempty_str(data.get(k))},
            thumbnail_url=data["thumbnail"] if _nonempty_str(data.get("thumbnail")) else None,
            share_url=next((data[k] for k in _SHARE_URL_KEYS if _nonempty_str(data.get(k))), None),
            ai_credits=_float_or_none(data.get("aiCreditsUsed")),
            transcript=transcript,
            subtitle_texts={k: data[k] for k in _TEXT_KEYS if _nonempty_str(data.get(k))},
            media_duration_s=_float_or_none(_media_info(data).get("duration")),
        )
    if status == "cleaned":
        return JobState(job_id=job_id, status="cleaned")
    return JobState(
        job_id=job_id,
        status="pending" if status == "pending" else "in-progress",
        progress_pct=_float_or_none(data.get("renderProgress")),
        unknown_status=None if status in KNOWN_STATUSES else status,
    )


def error_detail(body: Any) -> tuple[str | None, str | None]:
    """``(error_code, error_message)`` from the legacy error envelope, from ``data``, or from the
    v2 routes' ``{"code", "message", "fields"}``: each ``fields[]`` entry the message does not
    already name is added to it (``scenes[0].story: 16,000 characters...``), so the row's failure
    says which field to fix (§6.3)."""
    if not isinstance(body, dict):
        return None, None
    for source in (body.get("error"), body.get("data"), body):
        if isinstance(source, dict) and ("error_code" in source or "error_message" in source):
            return _str_or_none(source.get("error_code")), _str_or_none(source.get("error_message"))
    message = body.get("message")  # the v2 routes' 400: {"code", "message", "fields"} (§5.9)
    code = body.get("code")
    text = message if isinstance(message, str) else None
    fields = body.get("fields")
    for entry in fields if isinstance(fields, list) else ():
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and (text is None or name not in text):
            errors = entry.get("errors")
            if isinstance(errors, list):
                errors = "; ".join(str(e) for e in errors)
            text = (f"{text}; " if text else "") + f"{name}: {errors}"
    return code if isinstance(code, str) else None, text


VISUAL_NOT_FOUND = "SCENE_BACKGROUND_VISUAL_NOT_FOUND"
"""Pictory's name for a scene whose stock search found no visual (§6.2; S2 request-schema.md)."""


def pictory_said(exc: ApiError) -> tuple[str | None, str | None]:
    """``(error_code, error_message)`` as Pictory sent them, for the ledger and results: set
    when the error carries Pictory's code (a failed job's, or an error answer's), except a job
    the API no longer knows (that message is ours)."""
    if exc.error_code is None or isinstance(exc, JobLostError):
        return None, None
    return exc.error_code, exc.message


def answer_body(
    answer: Answer,
    endpoint: str,
    *,
    accept_failed_job: bool = False,
    unauthorized_hint: str | None = None,
) -> Any:
    """The JSON body of a 2xx ``answer``; otherwise the exception its status means.

    ``accept_failed_job``: a job read answered with a 4xx JSON body (other than 401, 404, 429) is
    a failed job, returned for ``parse_job``. A 2xx body that is not JSON is transient.

    A 401 comes as Pictory's ``{"message": "Unauthorized"}`` (§6.1) or in the error envelope;
    either way its AuthError says the credentials were refused and what to check
    (``unauthorized_hint``, from ``tokens.Auth.refusal_hint``: the variables of the credential
    in use), since the API's own text says nothing a user can act on."""
    status = answer.status
    body = _parse_json(answer.body)
    if 200 <= status < 300:
        if body is None:
            raise TransientError(
                "the API answered with a body that is not JSON", endpoint=endpoint, status=status
            )
        return body
    if accept_failed_job and body is not None and status < 500 and status not in (401, 404, 429):
        return body  # a failed job is an answer, parsed by the caller
    code, message = error_detail(body)
    text = message or f"HTTP {status}"
    if status == 429:
        error: ApiError = RateLimitedError(
            text,
            endpoint=endpoint,
            status=status,
            error_code=code,
            retry_after_s=_parse_retry_after(answer.retry_after),
        )
    elif status == 401:
        hint = unauthorized_hint or "check the Pictory credentials (orchestrator doctor)"
        error = AuthError(
            f"{text}: the API refused the credentials; {hint}",
            endpoint=endpoint,
            status=status,
            error_code=code,
        )
    elif status >= 500 or status == 408:
        error = TransientError(text, endpoint=endpoint, status=status, error_code=code)
    else:
        error = PermanentError(text, endpoint=endpoint, status=status, error_code=code)
    raise error


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our default pause


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _items(value: Any) -> list[dict[str, Any]] | None:
    """A transcript's items (sentences with ``words[]``, or ``{text, start, end}`` segments) as
    sent, or None; ``orchestrator.run.flows.transcript`` reads their words."""
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, dict)]


def _media_info(data: dict[str, Any]) -> dict[str, Any]:
    info = data.get("mediaInfo")
    return info if isinstance(info, dict) else {}


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: Any) -> float | None:
    """A number, or a numeric string; None for anything else (a bool, NaN, infinity)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
