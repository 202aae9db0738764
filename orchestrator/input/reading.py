"""How a manifest is being read: what the readers of its formats (``table`` for CSV/TSV and the
header of every format, ``xlsx`` for workbooks) note as they go, and what ``manifest.Manifest``
reports from it. Its own module so the readers depend on it, not on ``manifest``, which depends
on them."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ManifestError
from orchestrator.input.row import ManifestOptions


class Reading:
    """A manifest's reading so far.

    ``label`` names the file in messages (``FILE[Sheet]`` for a workbook); ``columns`` maps a
    header name to its spreadsheet column letter (workbooks only); ``description`` says how the
    file was read (``CSV, ';'-separated, UTF-16``) once its header has been read."""

    def __init__(self, path: Path, fmt: str, options: ManifestOptions) -> None:
        self.path = path
        self.label = str(path)
        self.columns: dict[str, str] = {}
        self.renamed: dict[str, str] = {}
        """Friendly headers read as reserved columns (``{'ID': 'id'}``)."""
        self.header: list[str] = []
        """The header's names as written in the file."""
        self.skip_ragged = False
        """``validate`` sets it: a row with the wrong number of cells is kept in ``ragged`` and
        skipped, so every such row is listed; otherwise the first one stops the reading."""
        self.ragged: list[ManifestError] = []
        self.ragged_unlisted = 0
        """Ragged rows past the first ``table.MAX_PENDING_RAGGED`` in a row: counted, not kept."""
        self.max_rows = options.row_cap
        self.description = {"json": "JSON array", "jsonl": "JSON Lines"}.get(fmt, fmt.upper())
        self.sha256: str | None = None
        """The sha256 (hex) of the file's bytes, set once every row has been read: the digest
        comes from the same pass as the rows (a workbook, read out of order, is hashed after)."""
