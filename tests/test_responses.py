"""Answer shapes: every quirk of the API contract is understood."""

from __future__ import annotations

from orchestrator.api.responses import created_job_id, error_detail, parse_job, parse_template


def test_job_ids_from_every_create_shape() -> None:
    """jobId (from-template), job_id (render) and a top-level jobId (storyboard) all parse."""
    assert created_job_id({"success": True, "data": {"jobId": "a"}}) == "a"
    assert created_job_id({"success": True, "data": {"job_id": "b"}}) == "b"
    assert created_job_id({"jobId": "c", "data": {}}) == "c"
    assert created_job_id({"success": True, "data": {}}) is None


def test_legacy_finished_preview_has_no_status() -> None:
    """A preview with renderParams and no status is completed."""
    job = parse_job(
        "p",
        {
            "job_id": "p",
            "success": True,
            "data": {"preview": "http://x", "renderParams": {"scenes": []}},
        },
    )
    assert job.status == "completed"
    assert job.render_params == {"scenes": []}


def test_running_and_pending_jobs() -> None:
    """in-progress with progress, and a queued render that reports pending."""
    running = parse_job("r", {"data": {"status": "in-progress", "renderProgress": 42}})
    assert (running.status, running.progress_pct) == ("in-progress", 42.0)
    assert parse_job("r", {"data": {"status": "pending"}}).status == "pending"


def test_the_video_is_videourl_only_never_a_share_page() -> None:
    """videoURL is the MP4; shareVideoURL / videoShareURL are viewing pages (§5.5): a render
    offering only those has no video to download."""
    both = {"data": {"status": "completed", "videoURL": "v", "shareVideoURL": "s"}}
    share_only = {"data": {"status": "completed", "videoShareURL": "vs"}}
    assert parse_job("r", both).video_url == "v"
    assert parse_job("r", share_only).video_url is None


def test_cleaned_is_a_finished_state_and_an_unknown_status_is_running() -> None:
    """§5.4: cleaned ends the wait (the job's results are gone); a status nobody documents is
    read as running and carried along to be logged."""
    cleaned = parse_job("r", {"success": True, "data": {"status": "cleaned"}})
    assert cleaned.status == "cleaned" and cleaned.finished
    odd = parse_job("r", {"success": True, "data": {"status": "Rendering-Queued"}})
    assert odd.status == "in-progress" and odd.unknown_status == "rendering-queued"
    assert parse_job("r", {"data": {"status": "pending"}}).unknown_status is None


def test_failed_job_carries_code_and_message() -> None:
    """success false with status failed becomes a failed JobState with the API's words."""
    job = parse_job(
        "r",
        {
            "success": False,
            "data": {"status": "failed", "error_code": "E1", "error_message": "no voice"},
        },
    )
    assert (job.status, job.error_code, job.error_message) == ("failed", "E1", "no voice")


def test_error_envelope_and_template_answer() -> None:
    """The legacy error envelope and the bare template object parse."""
    assert error_detail(
        {"success": False, "error": {"error_code": "5000", "error_message": "JOB_NOT_FOUND"}}
    ) == ("5000", "JOB_NOT_FOUND")
    info = parse_template({"templateId": "t1", "variables": {"name": "NAME"}})
    assert info is not None and info.template_id == "t1" and info.variables == {"name": "NAME"}
