"""What ``validate`` reports: each ``Problem`` located (file, line, column, field) with what to do,
and the ``ValidationReport`` of a whole manifest, which keeps the first ``MAX_STORED_PROBLEMS``
and counts them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.input.template import Template

MAX_STORED_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """One thing to fix, located. ``kind`` groups problems (``missing``, ``duplicate``...)."""

    file: str
    line: int | None
    field: str | None
    message: str
    hint: str | None = None
    kind: str = "row"
    column: str | None = None
    """The spreadsheet column letter, for workbooks: ``FILE[Sheet]:ROW:COLUMN``."""

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        where += f":{self.column}" if self.column is not None else ""
        name = f"field {self.field!r}: " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}: {name}{self.message}{hint}"

    @classmethod
    def from_error(cls, exc: InputError, kind: str) -> Problem:
        return cls(exc.file or "", exc.line, exc.field, exc.message, exc.hint, kind, exc.column)


@dataclass
class ValidationReport:
    """What ``validate_manifest`` found. ``ok`` means no problems (warnings allowed)."""

    manifest: Path
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    warnings: list[Problem] = field(default_factory=list)
    fatal: bool = False
    templates: dict[Path, Template] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """How the file was read, and each friendly header matched to a name."""
    read_as: str = ""
    """The file and how it was read: ``m.csv (CSV, semicolon-separated, UTF-8)``."""
    manifest_sha256: str | None = None
    """The sha256 of the manifest's bytes, from the same pass (None when it was not read whole)."""

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        """Count ``problem``; keep it while fewer than ``MAX_STORED_PROBLEMS`` are kept."""
        self.problem_count += 1
        if len(self.problems) < MAX_STORED_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        """One line: rows read, problems found (and how many are listed), warnings."""
        shown = len(self.problems)
        more = f" ({shown} listed)" if shown < self.problem_count else ""
        stop = "; stopped at a structural error" if self.fatal else ""
        return (
            f"{self.rows} rows, {self.problem_count} problems{more}, "
            f"{len(self.warnings)} warnings{stop}"
        )
