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


def test_a_completed_render_tells_its_thumbnail_share_page_duration_and_credits() -> None:
    """§6.2: ``thumbnail``, ``videoShareURL`` (or the legacy ``shareVideoURL``), ``videoDuration``
    and ``aiCreditsUsed`` are read; subtitle links are told apart from subtitle contents; a
    value of the wrong type is left out, never a crash."""
    done = {
        "success": True,
        "data": {
            "status": "completed",
            "progress": 100,
            "videoURL": "https://cdn/v.mp4",
            "videoShareURL": "https://video.pictory.ai/p/s",
            "thumbnail": "https://cdn/thumb.jpg",
            "srtFile": "https://cdn/v.srt",
            "vttFile": "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nHi\n",
            "videoDuration": 65.6,
            "aiCreditsUsed": 48,
        },
    }
    job = parse_job("r", done)
    assert (job.thumbnail_url, job.share_url) == (
        "https://cdn/thumb.jpg",
        "https://video.pictory.ai/p/s",
    )
    assert (job.video_duration_s, job.ai_credits) == (65.6, 48.0)
    assert job.subtitle_links == {"srtFile": "https://cdn/v.srt"}
    legacy = parse_job("r", {"data": {"status": "completed", "shareVideoURL": "https://s"}})
    assert legacy.share_url == "https://s" and legacy.ai_credits is None
    odd = parse_job(
        "r",
        {
            "data": {
                "status": "completed",
                "thumbnail": 7,
                "aiCreditsUsed": True,
                "videoDuration": "65.6",
            }
        },
    )
    assert (odd.thumbnail_url, odd.ai_credits, odd.video_duration_s) == (None, None, 65.6)


def test_a_failed_job_keeps_pictorys_code_and_message_verbatim() -> None:
    """§6.2: ``TEXT_TO_VIDEO_FAILED`` and the message naming the cause, unchanged; no message
    stays None (the poll stage says "job failed" itself)."""
    message = "SCENE_BACKGROUND_VISUAL_NOT_FOUND: scene 2 found no visual"
    job = parse_job(
        "r",
        {
            "success": False,
            "data": {
                "status": "failed",
                "error_code": "TEXT_TO_VIDEO_FAILED",
                "error_message": message,
            },
        },
    )
    assert (job.error_code, job.error_message) == ("TEXT_TO_VIDEO_FAILED", message)
    assert parse_job("r", {"success": False, "data": {"status": "failed"}}).error_message is None


def test_a_template_answer_is_read_in_either_spelling() -> None:
    """The create answer says ``deprecated``, the get answer ``depricated`` (its doc page notes
    the API's spelling): both are read."""
    for key in ("deprecated", "depricated"):
        info = parse_template({"templateId": "t", "variables": {}, key: True})
        assert info is not None and info.deprecated is True
        info = parse_template({"templateId": "t", "variables": {}, key: False})
        assert info is not None and info.deprecated is False
