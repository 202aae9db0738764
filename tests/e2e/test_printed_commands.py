"""Every command the tool prints for a ``--simulate`` batch works as printed: taken from the
summary, ``status``, the canary's line, an error or the report, split as a shell splits it
(``shlex``, a ``# note`` dropped) and run from the folder it was printed in, with no Pictory
credentials in the environment. Also: a batch killed under ``--simulate`` says at resume that
its simulator's jobs are gone and renders them again, advising no billing option; and a canary
run's ``--notify env:NAME`` reaches the plain ``approve``."""

from __future__ import annotations

import html
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import read_results, write_batch
from .receiver import Receiver

CREDENTIALS = (
    "PICTORY_API_KEY",
    "PICTORY_CLIENT_ID",
    "PICTORY_CLIENT_SECRET",
    "PICTORY_USER_ID",
    "PICTORY_API_BASE_URL",
)
RUN = ["run", "m.csv", "--template", "t.pictai", "--config", "c.toml", "--simulate", "test"]
"""A ``--simulate`` run of ``write_batch``'s files, named as a user in that folder names them."""
KILL_WAIT_S = 60.0


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding a 6-row batch, as the working directory; no Pictory credentials."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    write_batch(tmp_path, 6)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``orchestrator ARGV`` in this process: exit code, stdout, stderr."""
    code = main(argv)
    said = capsys.readouterr()
    return code, said.out, said.err


def next_line(out: str) -> str:
    """The command of the summary's or status's ``next:`` line (exactly one)."""
    found = [line.removeprefix("next: ") for line in out.splitlines() if line.startswith("next: ")]
    assert len(found) == 1, out
    return found[0]


def quoted_command(text: str) -> str:
    """The first `orchestrator ...` command a sentence quotes in backticks."""
    found = re.search(r"`(orchestrator [^`]+)`", text)
    assert found, text
    return found.group(1)


def run_printed(command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run a printed command verbatim: split as the shell splits it, a ``# note`` dropped."""
    argv = shlex.split(command, comments=True)
    assert argv[0] == "orchestrator", command
    return cli(argv[1:], capsys)


def append_events(run_dir: Path, *events: dict[str, Any]) -> None:
    with (run_dir / LEDGER_NAME).open("a", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps({"ts": round(time.time(), 3), **event}) + "\n")


def events(run_dir: Path) -> list[dict[str, Any]]:
    """The ledger's events (a line torn by a kill left out)."""
    text = (run_dir / LEDGER_NAME).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def statuses(run_dir: Path) -> dict[str, str]:
    return {r["id"]: r["status"] for r in read_results(run_dir)}


def test_every_next_command_of_a_simulated_batch_works_as_printed(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A halted run's summary and ``status`` print the same ``next:`` command, quoted (the run
    directory has a space); it resumes the simulated batch without credentials (and keeps the
    recorded spend cap). The ``--retry-failed`` and ``--rerender-ambiguous`` commands say that
    the simulator bills nothing, and work as printed; so do the commands that refusals name."""
    out_dir = "runs/my batch"
    code, out, _ = cli([*RUN, "--out", out_dir, "--max-renders", "2"], capsys)
    assert code == 1
    command = next_line(out)
    assert command == "orchestrator resume 'runs/my batch'"
    assert next_line(cli(["status", out_dir], capsys)[1]) == command

    code, out, _ = run_printed(command, capsys)  # the recorded spend cap holds: 2 more
    assert code == 1 and "--max-renders" in out
    assert list(statuses(offline / out_dir).values()).count("done") == 4
    assert next_line(out) == command

    append_events(  # the two rows left: one the API refused for good, one whose answer was lost
        offline / out_dir,
        {"e": "row", "row": "row-004", "line": 6, "output": "row-004.mp4", "flow": "template"},
        {"e": "failed", "row": "row-004", "stage": "render", "kind": "job_failed",
         "message": "the job failed", "permanent": True},
        {"e": "row", "row": "row-005", "line": 7, "output": "row-005.mp4", "flow": "template"},
        {"e": "render_intent", "row": "row-005"},
        {"e": "ambiguous", "row": "row-005", "stage": "render", "message": "answer lost"},
    )  # fmt: skip
    retry = next_line(cli(["status", out_dir], capsys)[1])
    assert retry.startswith(f"{command} --retry-failed  # ") and "nothing is billed" in retry
    code, out, _ = run_printed(retry, capsys)
    assert code == 1 and statuses(offline / out_dir)["row-004"] == "done"
    rerender = next_line(out)
    assert rerender.startswith(f"{command} --rerender-ambiguous  # ")
    assert "nothing is billed" in rerender

    code, out, _ = run_printed(rerender, capsys)
    assert code == 0 and "next:" not in out
    assert set(statuses(offline / out_dir).values()) == {"done"}

    code, _, err = cli(["approve", out_dir], capsys)  # no canary: names the command that does
    assert code == 2
    assert run_printed(quoted_command(err), capsys)[0] == 0

    code, _, err = cli([*RUN[:-2], "--out", out_dir], capsys)  # --simulate left out: refused
    assert code == 2 and "embedded simulator" in err
    assert run_printed(quoted_command(err), capsys)[0] == 0


def test_the_canary_line_of_the_report_works_from_another_folder(
    offline: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary names the approval as typed (a relative run directory); the report, read
    away from the folder the run started in, names it by its absolute path, and that command
    approves the canary from elsewhere, without credentials."""
    code, out, _ = cli([*RUN, "--out", "runs/c", "--canary", "2"], capsys)
    assert code == 3
    assert quoted_command(next_line(out)) == "orchestrator approve runs/c"
    page = html.unescape((offline / "runs/c/report.html").read_text(encoding="utf-8"))
    command = quoted_command(page)
    assert command == f"orchestrator approve {shlex.quote(str(offline / 'runs/c'))}"

    elsewhere = offline / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, _ = run_printed(command, capsys)
    assert code == 0 and "next:" not in out
    assert set(statuses(offline / "runs/c").values()) == {"done"}


def test_the_adopt_command_and_the_run_it_prints_work_as_printed(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finished simulated run directory loses its ledger: ``run`` names the whole ``adopt``
    command (manifest, template, --simulate, --config), which prints the whole ``run`` that
    goes on; both work as printed, and nothing is rendered again."""
    assert cli([*RUN, "--out", "runs/d"], capsys)[0] == 0
    (offline / "runs/d" / LEDGER_NAME).unlink()

    code, _, err = cli([*RUN, "--out", "runs/d"], capsys)
    assert code == 2 and "no ledger" in err
    adopt = quoted_command(err)
    assert adopt == (
        "orchestrator adopt runs/d m.csv --template t.pictai --simulate test --config c.toml"
    )
    code, out, _ = run_printed(adopt, capsys)
    assert code == 0 and "6 video(s) done" in out
    go_on = next_line(out)
    assert go_on == (
        "orchestrator run m.csv --template t.pictai --out runs/d --simulate test --config c.toml"
    )
    assert run_printed(go_on, capsys)[0] == 0
    ledger = (offline / "runs/d" / LEDGER_NAME).read_text(encoding="utf-8")
    assert '"render_intent"' not in ledger  # nothing rendered after the adoption


def _kill_with_renders_in_flight(proc: subprocess.Popen[str], run_dir: Path) -> None:
    """SIGKILL ``proc`` once render jobs are recorded and no render request is in its round
    trip (every intent has its job: no row is left ambiguous), checked while it is stopped."""
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        ledger = run_dir / LEDGER_NAME
        if ledger.exists() and '"render_job"' in ledger.read_text(encoding="utf-8"):
            proc.send_signal(signal.SIGSTOP)
            recorded = events(run_dir)
            intents = {e["row"] for e in recorded if e["e"] == "render_intent"}
            jobs = {e["row"] for e in recorded if e["e"] == "render_job"}
            if intents <= jobs:
                proc.kill()
                proc.wait(timeout=10)
                return
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("no moment with render jobs and no render in its round trip")


def test_a_simulated_batch_killed_mid_render_says_so_at_resume_and_renders_again(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed under ``--simulate demo`` with renders in flight: the resume says that the
    simulator stopped with the run and that those rows render again with no real billing;
    every row ends done (none ``job_lost``), and no billing option is advised."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *RUN[:-1], "demo", "--out", "runs/k"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _kill_with_renders_in_flight(proc, offline / "runs/k")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    killed = events(offline / "runs/k")
    done = {e["row"] for e in killed if e["e"] == "downloaded"}
    lost = {e["row"] for e in killed if e["e"] in ("render_job", "preview_job")} - done

    code, out, err = cli(["resume", "runs/k", "--simulate", "test"], capsys)  # a faster profile
    assert code == 0
    assert f"the simulator stopped with the run; {len(lost)} row(s) render again" in err
    assert "no real billing" in err
    assert "--retry-failed" not in out + err and "--rerender-ambiguous" not in out + err
    assert "next:" not in out
    assert set(statuses(offline / "runs/k").values()) == {"done"}
    retried = [e["row"] for e in events(offline / "runs/k") if e["e"] == "retry"]
    assert sorted(retried) == sorted(lost)


def test_notify_env_of_a_canary_run_is_used_by_the_plain_approve(
    offline: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--notify env:NAME`` given to the canary run is the batch's: the approval command the
    run prints (``orchestrator approve runs/c``, no options) notifies the same receiver."""
    with Receiver() as receiver:
        monkeypatch.setenv("ORCHESTRATOR_TEST_HOOK", receiver.url)
        argv = [*RUN, "--out", "runs/c", "--canary", "2", "--notify", "env:ORCHESTRATOR_TEST_HOOK"]
        code, out, _ = cli(argv, capsys)
        assert code == 3
        approve = quoted_command(next_line(out))
        assert approve == "orchestrator approve runs/c"
        assert run_printed(approve, capsys)[0] == 0
    waiting, finished = receiver.bodies
    assert waiting["event"] == "awaiting_approval"
    assert finished["event"] == "finished"
    assert finished["counts"] == {"done": 6, "failed": 0, "ambiguous": 0, "pending": 0}


def test_a_notify_url_given_to_the_canary_run_is_not_recorded_and_approve_says_so(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``--notify URL`` may be a key, so the ledger never holds it: the approval cannot
    notify it, and says so in one line naming ``--notify env:NAME``, which carries."""
    with Receiver() as receiver:
        argv = [*RUN, "--out", "runs/c", "--canary", "2", "--notify", receiver.url]
        code, out, _ = cli(argv, capsys)
        assert code == 3
        code, _, err = run_printed(quoted_command(next_line(out)), capsys)
        assert code == 0
    assert "notify: the batch notifies [notify] url" in err and "--notify env:NAME" in err
    assert [body["event"] for body in receiver.bodies] == ["awaiting_approval"]
    assert receiver.url not in (offline / "runs/c" / LEDGER_NAME).read_text(encoding="utf-8")
