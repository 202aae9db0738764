"""``--help`` describes every argument of every command, positional ones and the simulator's
profiles included."""

from __future__ import annotations

import argparse

import pytest

from orchestrator.cli.parser import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands there, and only there
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_argument_of_every_command_has_a_help_text() -> None:
    undescribed = [
        f"{name} {action.dest}"
        for name, sub in _subparsers(build_parser()).items()
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert undescribed == []


def test_simulate_and_sim_profile_say_what_each_profile_is() -> None:
    subs = _subparsers(build_parser())
    for text in (subs["run"].format_help(), subs["sim"].format_help()):
        flat = " ".join(text.split())
        for profile in ("demo", "realistic", "flaky", "test"):
            assert profile in flat
        assert "milliseconds" in flat and "every fault" in flat


def test_a_user_error_inside_a_task_group_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's mistake met by a task (a worker's row naming a missing template) is printed
    as one line with exit 2, like any other, even wrapped in an exception group."""
    from orchestrator.cli import handlers
    from orchestrator.cli import main as cli_main
    from orchestrator.errors import RunDirError

    def fails(args: object) -> int:
        raise BaseExceptionGroup("rows", [RunDirError("template abc is missing")])

    monkeypatch.setattr(handlers, "cmd_doctor", fails)
    assert cli_main.main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "orchestrator: error: template abc is missing"
