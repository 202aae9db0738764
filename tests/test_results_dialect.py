"""results.csv opens right where the manifest came from: the manifest's delimiter and encoding
(UTF-8 with a byte-order mark when a value does not fit), or the ``--results-dialect`` chosen;
every dialect reads back (``adopt`` reads it); formula guards hold in every dialect; and an edited
row's state and file describe the same video as the values beside them."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.options import RESULTS_DIALECTS
from orchestrator.input.identity import variables_digest
from orchestrator.input.manifest import text_dialect
from orchestrator.input.row import ManifestOptions
from orchestrator.input.rows import RowJob, RowLister
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import Downloaded, RenderIntent, Retry, RowAdmitted, RunStarted
from orchestrator.ledger.row_state import RowState
from orchestrator.report.results import FIXED_COLUMNS, row_cells, write_results
from orchestrator.report.results_csv import (
    NAMED_DIALECTS,
    ResultsDialect,
    read_results,
    results_dialect,
)


def _state(**options: Any) -> LedgerState:
    """A batch's state whose session recorded these manifest options."""
    state = LedgerState()
    state.apply(RunStarted(manifest_options=ManifestOptions(**options).recorded()))
    return state


def _rows(*jobs: RowJob) -> RowLister:
    def rows() -> Iterator[RowJob]:
        return iter(jobs)

    return rows


def _job(row_id: str, line: int, **variables: str) -> RowJob:
    return RowJob(row_id, line, dict(variables), None, f"{row_id}.mp4")


def test_the_cli_offers_every_named_dialect() -> None:
    """``--results-dialect`` choices are the writer's dialects, no more, no fewer."""
    assert tuple(NAMED_DIALECTS) == RESULTS_DIALECTS


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ((";", "cp1252"), ResultsDialect(";", "cp1252", False, ResultsDialect(";", "utf-8", True))),
        ((",", "utf-8"), ResultsDialect(",", "utf-8", False)),
        ((";", "utf-8-sig"), ResultsDialect(";", "utf-8", True)),
        (("\t", "utf-16"), ResultsDialect("\t", "utf-16-le", True)),
        (None, ResultsDialect(",", "utf-8", False)),
    ],
)
def test_by_default_results_follow_the_manifest(
    found: tuple[str, str] | None, expected: ResultsDialect
) -> None:
    """No choice: the manifest's delimiter; its encoding (UTF-16 and a UTF-8 BOM kept; another
    encoding with UTF-8 + BOM as the fallback); a workbook or JSON manifest gets plain UTF-8."""
    assert results_dialect(None, found) == expected


def test_a_chosen_dialect_wins_over_the_manifest() -> None:
    """``excel``: comma + UTF-8 BOM; ``excel-eu``: semicolon + UTF-8 BOM; ``utf8``: no BOM."""
    found = ("|", "cp1252")
    assert results_dialect("excel", found) == ResultsDialect(",", "utf-8", True)
    assert results_dialect("excel-eu", found) == ResultsDialect(";", "utf-8", True)
    assert results_dialect("utf8", found) == ResultsDialect(",", "utf-8", False)


def test_text_dialect_finds_what_the_reader_reads(tmp_path: Path) -> None:
    """Delimiter and codec of a CSV/TSV as the reader finds them; None for a workbook, a JSON
    file or one that cannot be read."""
    latin = tmp_path / "crm.csv"
    latin.write_bytes("name;city\nRené;Zürich\n".encode("cp1252"))
    assert text_dialect(latin, ManifestOptions(encoding="cp1252")) == (";", "cp1252")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + b"name,city\nAnn,Paris\n")
    assert text_dialect(bom) == (",", "utf-8-sig")
    unicode_text = tmp_path / "unicode.txt"
    unicode_text.write_bytes("name\tcity\nAnn\tParis\n".encode("utf-16"))
    assert text_dialect(unicode_text) == ("\t", "utf-16")
    assert text_dialect(tmp_path / "rows.json") is None
    assert text_dialect(tmp_path / "missing.csv") is None


def test_a_semicolon_windows_1252_batch_writes_semicolon_windows_1252(tmp_path: Path) -> None:
    """The bytes: no BOM, ``;`` between cells, ``é`` as the single byte 0xE9 Excel reads in a
    Windows-1252 locale; a formula-looking value is still neutralised."""
    state = _state(found_delimiter=";", found_encoding="cp1252")
    rows = _rows(_job("a", 2, name="René", offer="=1+1"), _job("b", 3, name="Zoë", offer="5"))
    path, counts, _ = write_results(tmp_path, rows, state)
    data = path.read_bytes()
    assert not data.startswith(codecs.BOM_UTF8)
    header = ";".join([*FIXED_COLUMNS, "name", "offer"])
    assert data.splitlines()[0] == header.encode("ascii")
    later = b";" * (len(FIXED_COLUMNS) - FIXED_COLUMNS.index("line") - 1)  # empty: not rendered
    assert b"a;pending;;;;;;;0;;resume;2;" + later + b"Ren\xe9;'=1+1\r\n" in data
    assert b"Zo\xeb" in data and counts == {"pending": 2}
    assert [r["name"] for r in read_results(path, "cp1252")] == ["René", "Zoë"]


def test_a_value_the_manifest_encoding_cannot_hold_makes_the_file_utf8_with_bom(
    tmp_path: Path,
) -> None:
    """One cell outside Windows-1252 (a name from an API message, say): the whole file is UTF-8
    with a byte-order mark (Excel reads it as UTF-8), nothing lost, still ``;``-separated."""
    state = _state(found_delimiter=";", found_encoding="cp1252")
    rows = _rows(_job("a", 2, name="René"), _job("b", 3, name="Łukasz"))
    path, counts, _ = write_results(tmp_path, rows, state)
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    assert "Łukasz".encode() in data and "René".encode() in data and b"id;status;" in data
    assert counts == {"pending": 2}  # counted once, not once per attempt
    assert [r["name"] for r in read_results(path)] == ["René", "Łukasz"]
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # no temporary file left


@pytest.mark.parametrize("dialect", [*NAMED_DIALECTS, None])
def test_every_dialect_reads_back_and_keeps_formula_guards(
    tmp_path: Path, dialect: str | None
) -> None:
    """Written in any dialect (chosen, recorded, or following a UTF-16 manifest), the file reads
    back cell for cell, and ``-cmd`` stays guarded."""
    state = _state(found_delimiter="\t", found_encoding="utf-16")
    rows = _rows(_job("a", 2, name='Zoë; "Z"', note="-cmd|x"))
    path, _, _ = write_results(tmp_path, rows, state, dialect=dialect)
    data = path.read_bytes()
    if dialect is None:
        assert data.startswith(codecs.BOM_UTF16_LE) and "id\tstatus".encode("utf-16-le") in data
    elif dialect == "utf8":
        assert data.startswith(b"id,status,")
    else:
        assert data.startswith(codecs.BOM_UTF8 + (b"id;" if dialect == "excel-eu" else b"id,"))
    (row,) = read_results(path)
    assert (row["id"], row["name"], row["note"]) == ("a", 'Zoë; "Z"', "'-cmd|x")


def test_a_recorded_choice_is_kept_and_an_explicit_one_wins(tmp_path: Path) -> None:
    """The dialect the latest session recorded (``--results-dialect`` on run or resume) is
    what ``report`` writes again; ``report --results-dialect`` writes another."""
    state = _state(results_dialect="excel-eu", found_delimiter=",", found_encoding="utf-8")
    rows = _rows(_job("a", 2, name="Ann"))
    path, _, _ = write_results(tmp_path, rows, state)
    assert path.read_bytes().startswith(codecs.BOM_UTF8 + b"id;status;")
    write_results(tmp_path, rows, state, dialect="utf8")
    assert path.read_bytes().startswith(b"id,status,")


def test_extra_columns_follow_ours_in_the_manifest_order(tmp_path: Path) -> None:
    """Variables and extra columns in the manifest's order after our columns; a manifest column
    named like one of ours keeps its values under ``NAME (manifest)``."""
    job = _job("a", 2, first_name="Ann", city="Paris")
    job.extras = {"notes": "call back", "status": "lead"}
    job.columns = ("notes", "first_name", "status", "city")
    path, _, _ = write_results(tmp_path, _rows(job), _state())
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[len(FIXED_COLUMNS) :] == ["notes", "first_name", "status (manifest)", "city"]
    (row,) = read_results(path)
    assert (row["status"], row["status (manifest)"], row["notes"]) == (
        "pending",
        "lead",
        "call back",
    )


def _delivered(values: dict[str, str], *later: Retry) -> RowState:
    """Row ``b``'s state: its video made from ``values`` and delivered, then ``later`` events."""
    state = LedgerState()
    for event in (
        RowAdmitted(row="b", line=3, output="b.mp4"),
        RenderIntent(row="b", preview_job="p", vars=variables_digest(values), values=values),
        Downloaded(row="b", file="videos/b.mp4", bytes=10, sha256="ab" * 32),
        *later,
    ):
        state.apply(event)
    return state.rows.take("b")


def test_a_video_kept_after_an_edit_shows_the_values_it_was_made_from() -> None:
    """Done, its file, and the old values beside it (never new values beside an old video)."""
    fixed, shown = row_cells("b", 3, _delivered({"name": "Ben"}), {"name": "Benjamin"})
    assert (fixed["status"], fixed["file"]) == ("done", "videos/b.mp4")
    assert fixed["retry"] == "rerender-changed" and shown == {"name": "Ben"}


def test_a_row_re_rendering_after_an_edit_shows_that_render_and_no_file_yet() -> None:
    """``--rerender-changed`` started it over: pending, its new values, and no file, size or
    digest of the earlier video beside them; ``error`` says where the earlier video stays."""
    retry = Retry(row="b", reason="values changed since its video was made", output="b-v2.mp4")
    st = _delivered({"name": "Ben"}, retry)
    fixed, shown = row_cells("b", 3, st, {"name": "Benjamin"})
    assert [fixed[c] for c in ("status", "file", "bytes", "sha256")] == ["pending", "", "", ""]
    assert fixed["error"] == (
        "re-rendering its edited values; the video of its earlier values stays at videos/b.mp4"
    )
    assert shown == {"name": "Benjamin"} and fixed["retry"] == "resume"
