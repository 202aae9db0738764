"""Envelopes and errors exactly as section 1 of ``pictory-api.md``.

Handlers raise ``ApiProblem``; the middleware turns it into
``{"success": false, "error": {"error_code", "error_message"}}`` with the problem's HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web


class ApiProblem(Exception):
    """An error answer: HTTP status, the API's ``error_code`` and a message that teaches."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = dict(headers or {})


def dumps(value: Any) -> str:
    """Compact JSON, as the service sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ok(data: Mapping[str, Any]) -> dict[str, Any]:
    """The success envelope."""
    return {"success": True, "data": dict(data)}


def error_body(error_code: str, message: str) -> dict[str, Any]:
    """The legacy error envelope."""
    return {"success": False, "error": {"error_code": error_code, "error_message": message}}


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer with compact encoding."""
    return web.Response(
        text=dumps(body), status=status, content_type="application/json", headers=headers
    )


UNAUTHORIZED_BODY = {"message": "Unauthorized"}
"""Pictory's 401 body (contract §6.1 [S2]), whatever the cause."""
REASON_HEADER = "X-Simulator-Reason"
"""[choice] Where a 401 tells a developer why (``CODE: sentence``), outside the documented body
(``auth`` module docstring)."""


def problem_response(problem: ApiProblem) -> web.Response:
    """The error envelope with the problem's status; a 401 answers Pictory's own body instead,
    its code and reason in ``X-Simulator-Reason``."""
    if problem.status == 401:
        reason = f"{problem.error_code}: {problem.message}"
        safe = reason.encode("ascii", "replace").decode("ascii").replace("\n", " ")
        headers = {**problem.headers, REASON_HEADER: safe}
        return json_response(UNAUTHORIZED_BODY, status=401, headers=headers)
    return json_response(
        error_body(problem.error_code, problem.message),
        status=problem.status,
        headers=problem.headers,
    )


def job_not_found(job_id: str) -> ApiProblem:
    """Unknown or expired job: the sample programs' ``"5000"`` / ``"JOB_NOT_FOUND"``."""
    del job_id  # the real service does not echo it
    return ApiProblem(404, "5000", "JOB_NOT_FOUND")


def invalid_body(message: str) -> ApiProblem:
    return ApiProblem(400, "INVALID_REQUEST_BODY", message)


async def read_json(request: web.Request, *, empty_ok: bool = False) -> Any:
    """The request body parsed as JSON, or a 400 that says what was wrong."""
    raw = await request.read()
    if not raw.strip() and empty_ok:
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiProblem(
            400,
            "INVALID_JSON",
            f"the request body must be JSON ({exc}); send Content-Type: application/json",
        ) from None


async def read_json_object(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """Like ``read_json`` but the body must be a JSON object."""
    body = await read_json(request, empty_ok=empty_ok)
    if not isinstance(body, dict):
        raise invalid_body(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def optional_str(body: Mapping[str, Any], field: str) -> str | None:
    """A string field that may be absent; any other type is a 400 naming the field."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_body(f"field {field!r} must be a string")
    return value


def required_str(body: Mapping[str, Any], field: str) -> str:
    value = optional_str(body, field)
    if not value:
        raise invalid_body(f"field {field!r} is required (a non-empty string)")
    return value
