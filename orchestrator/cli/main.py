"""The ``orchestrator`` command: parse, build config, call one library function, print.

Exit codes: 0 every row done · 1 some rows failed, ambiguous or pending · 2 bad usage or input ·
3 a canary was rendered and the rest waits for approval · 4 a disk fault stopped it · 130
interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orchestrator.cli.parser import build_parser
from orchestrator.errors import ExitCode, StorageError, UserError

EXIT_AWAITING_APPROVAL = ExitCode.AWAITING_APPROVAL


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from orchestrator.cli.exposed import exposed, warning

    for flag in exposed(sys.argv[1:] if argv is None else argv):
        print(f"orchestrator: warning: {warning(flag)}", file=sys.stderr)
    try:
        code: int = args.func(args)
    except UserError as exc:
        _say_error(exc)
        return ExitCode.USAGE
    except StorageError as exc:
        _say_error(exc)
        return ExitCode.STORAGE
    except BaseExceptionGroup as group:  # a user error met inside a task group (a worker's rows)
        mistakes = _user_errors(group)
        if mistakes is None:
            raise
        for mistake in dict.fromkeys(mistakes):  # each once, in order
            _say_error(mistake)
        disk = any(isinstance(m, StorageError) for m in mistakes)
        return ExitCode.STORAGE if disk else ExitCode.USAGE
    except KeyboardInterrupt:
        print("orchestrator: interrupted; run the same command again to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code


def _say_error(exc: UserError | StorageError) -> None:
    print(f"orchestrator: error: {exc}", file=sys.stderr)
    for line in getattr(exc, "lines", []):
        print(f"  {line}", file=sys.stderr)


def _user_errors(
    group: BaseExceptionGroup[BaseException],
) -> list[UserError | StorageError] | None:
    """The user errors (and disk faults) ``group`` holds when it holds nothing else (else None:
    a real crash)."""
    found: list[UserError | StorageError] = []
    for exc in group.exceptions:
        if isinstance(exc, UserError | StorageError):
            found.append(exc)
        elif isinstance(exc, BaseExceptionGroup):
            inner = _user_errors(exc)
            if inner is None:
                return None
            found += inner
        else:
            return None
    return found
