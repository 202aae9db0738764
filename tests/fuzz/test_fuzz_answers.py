"""Every parser of an API answer (``orchestrator.api.responses``), fed any JSON value: it returns a
result (a job state, an id or None), never raises. What the API answers is not ours to trust."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.api import responses

from .strategies import json_values

job_data = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(
            st.sampled_from(
                ["in-progress", "completed", "failed", "pending", "cleaned", "weird", ""]
            ),
            json_values,
        ),
        "renderParams": json_values,
        "preview": json_values,
        "videoURL": json_values,
        "shareVideoURL": json_values,
        "videoDuration": json_values,
        "renderProgress": json_values,
        "transcript": json_values,
        "highlights": json_values,
        "srt": json_values,
        "vtt": json_values,
        "txt": json_values,
        "srtFile": json_values,
        "error_code": json_values,
        "error_message": json_values,
    },
)
answers = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"data": st.one_of(job_data, json_values)},
        optional={"success": json_values, "job_id": json_values, "jobId": json_values},
    ),
)


@given(answers)
@example({"data": {"status": "completed", "transcript": [{"words": [{"word": 3}]}]}})
@example({"data": {"videoDuration": "NaN", "status": "completed"}})
def test_job_answers_always_parse(body: Any) -> None:
    state = responses.parse_job("job-1", body)
    assert state.job_id == "job-1"
    assert isinstance(state.status, str)


@given(answers)
def test_create_and_error_answers_always_parse(body: Any) -> None:
    job_id = responses.created_job_id(body)
    assert job_id is None or (isinstance(job_id, str) and job_id)
    code, message = responses.error_detail(body)
    assert code is None or isinstance(code, str)
    assert message is None or isinstance(message, str)
    template = responses.parse_template(body)
    assert template is None or isinstance(template.template_id, str)
