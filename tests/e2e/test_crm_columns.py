"""A CRM export through the real CLI against the simulator: columns the template does not use
ride along into results.csv and are never sent (the simulator refuses an undeclared variable
here) nor part of a row's identity; an empty used variable refuses the run with every such row in
one message; results.csv keeps a ``;``-separated Windows-1252 manifest's dialect; rows without
``id`` get readable names, and a run directory begun with identity names keeps them, rendering
nothing twice."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.commands import run_spec
from orchestrator.cli.main import main
from orchestrator.config import load_config, load_credentials
from orchestrator.input.row import ManifestOptions
from orchestrator.ledger.file import LEDGER_NAME
from orchestrator.ledger.records import BatchChoices
from orchestrator.report.results import FIXED_COLUMNS, RESULTS_NAME
from orchestrator.run.spec import RunSpec

from .helpers import read_results, write_batch

CRM_HEADER = ["notes", "name", "owner", "city"]
CRM_ROWS = [
    ["VIP; call first", "René Dupont", "", "Zürich"],
    ["", "Zoë Kraß", "Anna", "Köln"],
    ["", "Ana Núñez", "", "Málaga"],
]
READABLE = re.compile(r"videos/(\d+)-([a-z0-9-]+)-[0-9a-f]{8}\.mp4")
IDENTITY = re.compile(r"videos/r-[0-9a-f]{16}\.mp4")


def _write(path: Path, header: list[str], rows: list[list[str]], *, sep: str = ",") -> None:
    """A manifest as a spreadsheet exports it: ``;`` in Windows-1252 (Excel in much of Europe),
    else ``,`` in UTF-8."""
    text = io.StringIO()
    csv.writer(text, delimiter=sep, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(text.getvalue().encode("cp1252" if sep == ";" else "utf-8"))


def _sent(sim: Any) -> int:
    """API requests the simulator saw (its own stats reads excluded)."""
    requests: dict[str, int] = sim.stats()["requests"]
    return sum(n for route, n in requests.items() if not route.startswith("GET /__sim__"))


def _run(batch: dict[str, Path], manifest: Path, *extra: str) -> list[str]:
    return ["run", str(manifest), "--template", str(batch["template"]), "--out",
            str(batch["out"]), "--config", str(batch["config"]), *extra]  # fmt: skip


def _mp4_variables(path: Path) -> dict[str, str]:
    """The variables the simulator rendered, from the JSON in the MP4's ``free`` box."""
    data = path.read_bytes()
    start = data.index(b'{"simulator":"orchestrator"')
    box, _ = json.JSONDecoder().raw_decode(data[start:].decode("utf-8", "replace"))
    variables: dict[str, str] = box["variables"]
    return variables


def _files(run_dir: Path) -> dict[str, str]:
    return {r["line"]: r["file"] for r in read_results(run_dir)}


@pytest.fixture
def batch(tmp_path: Path, make_sim: Any, api_env: Any) -> dict[str, Any]:
    """A template using {{name}} and {{city}}, a fast config, and a simulator that refuses any
    variable its template does not declare."""
    sim = make_sim(strict_variables=True)
    api_env(sim)
    files: dict[str, Any] = write_batch(tmp_path, 0)
    files["sim"] = sim
    return files


def test_a_semicolon_windows_1252_crm_export_renders_and_reads_right_in_excel(
    batch: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Extra columns (with empty cells) are named once and carried through to results.csv and
    the report; only the template's variables reach Pictory; results.csv is ``;``-separated
    Windows-1252 like the export (no BOM, the accents as Excel reads them there), extra columns
    in the export's order; each video is named by its line and name."""
    manifest = batch["out"].parent / "crm.csv"
    _write(manifest, CRM_HEADER, CRM_ROWS, sep=";")
    validate = ["validate", str(manifest), "--template", str(batch["template"])]
    assert main([*validate, "--encoding", "cp1252"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "columns 'notes', 'owner' are not used" in warnings[0]

    assert main(_run(batch, manifest, "--encoding", "cp1252")) == 0
    first_line = capsys.readouterr().err.splitlines()[0]
    assert "semicolon-separated, cp1252; extra columns, never sent: notes, owner)" in first_line

    data = (batch["out"] / RESULTS_NAME).read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    header = ";".join([*FIXED_COLUMNS, *CRM_HEADER]).encode("cp1252")
    assert data.split(b"\r\n")[0] == header
    assert "René Dupont;;Zürich".encode("cp1252") in data and b'"VIP; call first"' in data
    results = read_results(batch["out"], "cp1252")
    assert [(r["status"], r["notes"], r["name"], r["owner"]) for r in results] == [
        ("done", "VIP; call first", "René Dupont", ""),
        ("done", "", "Zoë Kraß", "Anna"),
        ("done", "", "Ana Núñez", ""),
    ]
    names = [READABLE.fullmatch(r["file"]) for r in results]
    assert [(m.group(1), m.group(2)) for m in names if m] == [
        ("2", "rene-dupont"),
        ("3", "zoe-krass"),
        ("4", "ana-nunez"),
    ]
    for r in results:
        assert set(_mp4_variables(batch["out"] / r["file"])) == {"name", "city"}
    report_data = (batch["out"] / "report-data.js").read_text(encoding="utf-8")
    assert report_data.endswith('"columns":["notes","name","owner","city"]};\n')
    assert batch["sim"].stats()["renders_started"] == 3


def test_extra_columns_added_or_edited_later_render_nothing_again(
    batch: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch rendered without extra columns, rerun after a CRM added and filled some: no row
    is new or edited (identity and values are the variables'), nothing renders, names stay."""
    manifest = batch["manifest"]
    _write(manifest, ["name", "city"], [["Ann", "Paris"], ["Ben", "Rome"]])
    assert main(_run(batch, manifest)) == 0
    before = _files(batch["out"])
    _write(
        manifest,
        ["segment", "name", "city", "owner"],
        [["gold", "Ann", "Paris", "Anna"], ["", "Ben", "Rome", "Tom"]],
    )
    capsys.readouterr()
    assert main(_run(batch, manifest)) == 0
    assert "CHANGED" not in capsys.readouterr().err
    assert batch["sim"].stats()["renders_started"] == 2
    assert _files(batch["out"]) == before
    assert [r["segment"] for r in read_results(batch["out"])] == ["gold", ""]


def test_strict_columns_refuses_an_unused_column_and_sends_nothing(
    batch: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--strict-columns``: the unused column is a problem naming it; exit 2, no request."""
    manifest = batch["manifest"]
    _write(manifest, ["name", "city", "notes"], [["Ann", "Paris", ""]])
    assert main(_run(batch, manifest, "--strict-columns")) == 2
    assert "column 'notes' is not a variable of template" in capsys.readouterr().err
    assert _sent(batch["sim"]) == 0


def test_empty_used_variables_refuse_with_every_row_in_one_message(
    batch: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty ``name`` on lines 3, 4 and 6 is one problem naming them all; an empty cell in an
    extra column is none; nothing is sent."""
    rows = [["Ann", "x"], ["", "x"], [" ", ""], ["Dan", ""], ["", "y"]]
    manifest = batch["manifest"]
    cells = [[name, note, f"City {i}"] for i, (name, note) in enumerate(rows)]
    _write(manifest, ["name", "notes", "city"], cells)
    assert main(_run(batch, manifest)) == 2
    err = capsys.readouterr().err
    assert "1 problem(s)" in err
    assert "variable 'name' is empty; the video would show a blank there; affects 3 rows " in err
    assert "(lines 3-4, 6)" in err
    assert _sent(batch["sim"]) == 0


def test_names_are_the_same_for_reruns_of_the_same_file(batch: dict[str, Any]) -> None:
    """Two batches of one file name their videos alike (line, name, a digest of the row)."""
    manifest = batch["manifest"]
    _write(manifest, ["name", "city"], [["Ann Lee", "Paris"], ["Ben", "Rome"]])
    assert main(_run(batch, manifest)) == 0
    again = [*_run(batch, manifest)]
    again[again.index("--out") + 1] = str(batch["out"].parent / "again")
    assert main(again) == 0
    assert _files(batch["out"]) == _files(batch["out"].parent / "again")
    assert [READABLE.fullmatch(f) is not None for f in _files(batch["out"]).values()] == [1, 1]


def test_a_run_directory_begun_with_identity_names_keeps_them_and_renders_nothing_twice(
    batch: dict[str, Any],
) -> None:
    """A batch begun by a version that named rows by identity (its record holds no
    ``readable_names``): ``run`` and ``resume`` render only the rows left, every video named
    ``r-…``, the delivered ones untouched. With its ledger and results.csv removed, ``adopt``
    still finds its videos by those names."""
    manifest = batch["manifest"]
    _write(manifest, ["name", "city"], [["Ann", "Paris"], ["Ben", "Rome"], ["Cy", "Oslo"]])
    old = RunSpec(
        run_dir=batch["out"],
        manifest=manifest,
        template=batch["template"],
        choices=BatchChoices(max_renders=1),
        manifest_options=ManifestOptions(),  # what the previous version ran with and recorded
    )
    config = load_config(batch["config"])
    assert run_spec(old, config, load_credentials(required=True), None, False) == 1
    record = json.loads((batch["out"] / LEDGER_NAME).read_text().splitlines()[0])
    assert record["manifest_options"] == {}
    (delivered,) = [f for f in _files(batch["out"]).values() if f]
    assert IDENTITY.fullmatch(delivered)
    video = (batch["out"] / delivered).read_bytes()

    assert main(_run(batch, manifest, "--max-renders", "1")) == 1
    assert main(["resume", str(batch["out"]), "--max-renders", "5"]) == 0
    files = _files(batch["out"])
    assert all(IDENTITY.fullmatch(f) for f in files.values()) and delivered in files.values()
    assert (batch["out"] / delivered).read_bytes() == video
    assert batch["sim"].stats()["renders_started"] == 3

    (batch["out"] / LEDGER_NAME).unlink()
    (batch["out"] / RESULTS_NAME).unlink()
    adopt = ["adopt", str(batch["out"]), str(manifest), "--template", str(batch["template"])]
    assert main(adopt) == 0
    assert main(_run(batch, manifest)) == 0
    assert _files(batch["out"]) == files
    assert batch["sim"].stats()["renders_started"] == 3
