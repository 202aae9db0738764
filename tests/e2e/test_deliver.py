"""``--deliver``: each video uploaded as its row is done, against a real S3 server started here
(moto in server mode on loopback, behind a proxy that can fail or hold a PUT), and to a folder."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME, replay
from tests.s3_server import S3Server, aws_env

from .helpers import check_invariants, read_results, run_args, run_cli, write_batch
from .killing import cli


def _events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    lines = (run_dir / LEDGER_NAME).read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("e") == kind]


def test_a_batch_puts_one_object_per_row_and_results_link_each(
    tmp_path: Path, make_sim: Any, api_env: Any, s3: S3Server
) -> None:
    """--deliver s3://videos/campaign/: one object per row under prefix + output name, the
    bytes of the local video, and results.csv's delivered_url is the object's URL."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 4)
    assert main(run_args(batch, "--deliver", "s3://videos/campaign/")) == 0
    rows = check_invariants(batch["out"], sim.stats(), 4)
    objects = s3.objects("videos")
    assert sorted(objects) == sorted(f"campaign/{Path(r['file']).name}" for r in rows)
    for r in rows:
        local = (batch["out"] / r["file"]).read_bytes()
        assert objects[f"campaign/{Path(r['file']).name}"] == local
        assert r["delivered_url"] == f"{s3.url}/videos/campaign/{Path(r['file']).name}"
        assert r["delivered_expires"] == ""  # the object's own URL (private unless made public)
    delivered = _events(batch["out"], "delivered")
    assert len(delivered) == 4 and {d["destination"] for d in delivered} == {
        "s3://videos/campaign/"
    }


def test_a_failed_upload_is_retried_and_delivered_once(
    tmp_path: Path, make_sim: Any, api_env: Any, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store answers the first three PUTs 503 SlowDown: each is tried again with the run's
    transfer policy, and every row ends delivered, with no failure recorded."""
    sim = make_sim()
    api_env(sim)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.proxy.url)
    s3.proxy.fail_puts = 3
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--deliver", "s3://videos/")) == 0
    assert s3.proxy.puts_failed == 3 and s3.proxy.puts_forwarded == 3
    assert len(s3.objects("videos")) == 3
    assert not _events(batch["out"], "failed")
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}


def test_a_refused_destination_fails_the_delivery_only_and_a_rerun_uploads(
    tmp_path: Path, make_sim: Any, api_env: Any, s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """No such bucket: the rows fail at their deliver stage (exit 1), their videos kept; once the
    bucket exists, the same command uploads each once and renders nothing again."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--deliver", "s3://late-bucket/")) == 1
    failed = _events(batch["out"], "failed")
    assert {f["stage"] for f in failed} == {"deliver"} and len(failed) == 2
    assert all(f["kind"] == "delivery_refused" for f in failed)
    renders = sim.stats()["renders_started"]
    s3.client.create_bucket(Bucket="late-bucket")
    assert main(run_args(batch, "--deliver", "s3://late-bucket/")) == 0
    assert sim.stats()["renders_started"] == renders == 2
    assert len(s3.objects("late-bucket")) == 2
    assert len(_events(batch["out"], "downloaded")) == 2  # not downloaded again


@pytest.mark.slow
def test_killed_between_download_and_upload_resumes_uploading_the_rest_once(
    tmp_path: Path, standalone_sim: Any, s3: S3Server
) -> None:
    """The run is SIGKILLed with every video downloaded and only two uploaded (the store holds
    the other PUTs unanswered); the same command then uploads the rest, each once, with no extra
    render, and results.csv links every row."""
    sim = standalone_sim("--profile", "test", "--seed", "5")
    s3.proxy.hold_after = 2
    env = {**sim.env(), **aws_env(s3.proxy.url)}
    batch = write_batch(tmp_path, 6)
    args = run_args(batch, "--deliver", "s3://videos/half/")
    proc = cli(args, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (batch["out"] / LEDGER_NAME).exists() and (
            len(_events(batch["out"], "downloaded")) == 6
            and len(_events(batch["out"], "delivered")) == 2
        ):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    else:
        pytest.fail("the run never reached six downloads and two deliveries")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    renders = sim.stats()["renders_started"]
    assert renders == 6
    state = replay(batch["out"] / LEDGER_NAME)
    assert sum(state.rows[f"row-{i:03d}"].status == "pending" for i in range(6)) == 4
    s3.proxy.hold_after = None
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert sim.stats()["renders_started"] == renders
    assert s3.proxy.puts_forwarded == 6  # two before the kill, four after: each once
    assert len(s3.objects("videos", "half/")) == 6
    rows = read_results(batch["out"])
    assert all(r["delivered_url"].endswith(Path(r["file"]).name) for r in rows)
    assert len(_events(batch["out"], "downloaded")) == 6


def test_file_delivery_and_a_presigned_link_with_its_expiry(
    tmp_path: Path, make_sim: Any, api_env: Any, s3: S3Server
) -> None:
    """file:///share/ copies each video (verified by reading it back); --deliver-presign 2 on S3
    links a presigned URL and says when it expires."""
    sim = make_sim()
    api_env(sim)
    share = tmp_path / "share"
    batch = write_batch(tmp_path / "a", 2)
    assert main(run_args(batch, "--deliver", share.as_uri() + "/")) == 0
    for r in read_results(batch["out"]):
        name = Path(r["file"]).name
        assert (share / name).read_bytes() == (batch["out"] / r["file"]).read_bytes()
        assert r["delivered_url"] == (share / name).as_uri()
    signed = write_batch(tmp_path / "b", 1)
    assert main(run_args(signed, "--deliver", "s3://videos/", "--deliver-presign", "2")) == 0
    (row,) = read_results(signed["out"])
    assert "X-Amz-Signature=" in row["delivered_url"]
    assert row["delivered_expires"].endswith("Z")
    with urllib.request.urlopen(row["delivered_url"]) as answer:
        assert answer.read() == (signed["out"] / row["file"]).read_bytes()


def test_more_than_seven_days_or_an_unknown_scheme_is_refused_in_one_line(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--deliver-presign 8 and --deliver gs://... stop before anything is sent, in one line."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 1)
    assert main(run_args(batch, "--deliver", "s3://videos/", "--deliver-presign", "8")) == 2
    err = capsys.readouterr().err
    assert "at most 7 days" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(run_args(batch, "--deliver", "gs://videos/")) == 2
    assert "give s3://BUCKET/PREFIX/" in capsys.readouterr().err
    assert sim.stats()["renders_started"] == 0


def test_a_batch_done_before_deliver_was_given_is_delivered_by_the_next_run(
    tmp_path: Path, make_sim: Any, api_env: Any, s3: S3Server
) -> None:
    """Rows done without --deliver are uploaded when a later run of the batch is given it,
    without rendering or downloading again."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch)) == 0
    assert main(run_args(batch, "--deliver", "s3://videos/later/")) == 0
    assert sim.stats()["renders_started"] == 2
    assert len(s3.objects("videos", "later/")) == 2
    assert all(r["delivered_url"] for r in read_results(batch["out"]))


def test_pictory_side_delivery_fields_go_through_on_the_v2_routes(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an API key (the v2 routes), [deliver] destinations and --pictory-aws-connection
    ride on each storyboard request verbatim, and the simulator records them; with --direct too."""
    sim = make_sim()
    monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
    monkeypatch.setenv("PICTORY_API_KEY", "pictai_e2e_0123456789")
    for name in ("PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET", "PICTORY_USER_ID"):
        monkeypatch.delenv(name, raising=False)
    destinations = [{"opaque": "passed through verbatim", "n": 2}]  # shape unpublished (§6.3)
    extra = '[[deliver.destinations]]\nopaque = "passed through verbatim"\nn = 2\n'
    batch = write_batch(tmp_path / "a", 2, extra_config=extra)
    assert main(run_args(batch, "--pictory-aws-connection", "aws-7")) == 0
    sent = {"awsConnectionId": "aws-7", "destinations": destinations}
    assert sim.stats()["pictory_delivery"] == {json.dumps(sent, sort_keys=True): 2}
    direct = write_batch(tmp_path / "b", 1)
    assert main(run_args(direct, "--direct", "--pictory-vimeo-connection", "vim-1")) == 0
    assert sim.stats()["pictory_delivery"][json.dumps({"vimeoConnectionId": "vim-1"})] == 1


def test_a_wrong_bucket_is_corrected_by_running_again_with_the_right_one(
    tmp_path: Path, make_sim: Any, api_env: Any, s3: S3Server
) -> None:
    """Rows whose delivery a mistyped bucket refused go to the bucket the next run names."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--deliver", "s3://vidoes/")) == 1
    assert main(run_args(batch, "--deliver", "s3://videos/fixed/")) == 0
    assert len(s3.objects("videos", "fixed/")) == 2
    assert sim.stats()["renders_started"] == 2
    assert {d["destination"] for d in _events(batch["out"], "delivered")} == {"s3://videos/fixed/"}


def test_a_video_not_on_this_disk_is_downloaded_again_never_rendered_again(
    tmp_path: Path, make_sim: Any, api_env: Any, s3: S3Server
) -> None:
    """A row waiting for its upload whose video is not here (a shared batch's row taken over on
    another machine; here, removed) is downloaded again, then uploaded: no second render."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 1)
    assert main(run_args(batch, "--deliver", "s3://later/")) == 1
    (video,) = (batch["out"] / "videos").glob("*.mp4")
    video.unlink()
    s3.client.create_bucket(Bucket="later")
    assert main(run_args(batch, "--deliver", "s3://later/")) == 0
    assert sim.stats()["renders_started"] == 1
    assert len(_events(batch["out"], "downloaded")) == 2
    assert list(s3.objects("later").values()) == [video.read_bytes()]
