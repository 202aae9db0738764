"""The commands printed to continue a run directory, complete, so that each works as printed.
What its batch runs against (its *target*, reused by ``resume`` and ``approve``) is
``run.target``'s.

The ledger-missing refusal of ``run`` names the complete ``adopt`` command (``adopt_needed``),
and ``adopt`` the complete ``run`` that goes on (``run_command_line``).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from orchestrator.ledger.file import fresh_start_refused, work_without_ledger
from orchestrator.run.target import Target, last_run_record, recorded_target

__all__ = [
    "Target",
    "adopt_needed",
    "last_run_record",
    "manifest_flags",
    "recorded_target",
    "run_command_line",
]


def adopt_needed(args: argparse.Namespace, run_dir: Path, manifest: Path) -> None:
    """``run`` on a run directory whose ledger was removed beside its videos or results: refuse,
    naming the complete ``adopt`` command (the same manifest, template, flow, target and
    manifest options as this ``run``), which rebuilds the ledger without a request."""
    found = work_without_ledger(run_dir)
    if not found:
        return
    command = shlex.join(
        [
            "orchestrator",
            "adopt",
            str(run_dir),
            str(manifest),
            *_batch_flags(args),
            *_target_flags(args),
            *manifest_flags(args),
        ]
    )
    raise fresh_start_refused(run_dir, found, command)


def run_command_line(args: argparse.Namespace, run_dir: Path) -> str:
    """The ``orchestrator run`` command that goes on after ``adopt``: its manifest, template,
    flow, target and manifest options, ``--out RUN_DIR``; quoted for the shell."""
    return shlex.join(
        [
            "orchestrator",
            "run",
            str(args.manifest),
            *_batch_flags(args),
            "--out",
            str(run_dir),
            *_target_flags(args),
            *manifest_flags(args),
        ]
    )


def _batch_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--template", str(args.template)] if args.template else []
    if args.flow != "template":
        flags += ["--flow", args.flow]
    return flags


def _target_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--simulate", args.simulate] if getattr(args, "simulate", None) else []
    if getattr(args, "config", None):
        flags += ["--config", str(args.config)]
    return flags


def manifest_flags(args: argparse.Namespace) -> list[str]:
    """The manifest options given (how the manifest is read), as options again."""
    flags: list[str] = []
    for name in ("sheet", "delimiter", "encoding"):
        value = getattr(args, name, None)
        if value:
            flags += [f"--{name}", value]
    for name in ("strict_headers", "strict_columns"):
        if getattr(args, name, False):
            flags.append("--" + name.replace("_", "-"))
    for folder in getattr(args, "allow_path", None) or []:
        flags += ["--allow-path", str(folder)]
    if getattr(args, "max_rows", None):
        flags += ["--max-rows", str(args.max_rows)]
    return flags
