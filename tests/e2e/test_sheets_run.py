"""An Excel workbook and a semicolon CSV render the same videos as the equivalent CSV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from orchestrator.cli.main import main

from .helpers import read_results, write_batch

ROWS: list[list[Any]] = [
    ["Ann", "Acme", 0.2, dt.datetime(2026, 3, 1)],
    ["Ben", "Beta, Inc", 0.125, dt.datetime(2026, 4, 2)],
    ["Cleo", "Cobalt", 1.0, dt.datetime(2026, 12, 31)],
]
SHOWN = [
    ["Ann", "Acme", "20.0%", "01/03/2026"],
    ["Ben", "Beta, Inc", "12.5%", "02/04/2026"],
    ["Cleo", "Cobalt", "100.0%", "31/12/2026"],
]
TEMPLATE = {
    "projectName": "sheets-e2e",
    "scenes": [{"sceneId": 1, "sentence": "{{name}} at {{city}}: {{offer}} until {{until}}"}],
}


def mp4_variables(path: Path) -> dict[str, str]:
    """The variables the simulator rendered, from the JSON in the MP4's ``free`` box."""
    data = path.read_bytes()
    start = data.index(b'{"simulator":"orchestrator"')
    box, _ = json.JSONDecoder().raw_decode(data[start:].decode("utf-8", "replace"))
    variables: dict[str, str] = box["variables"]
    return variables


def rendered(run_dir: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """id → (video file, variables in it), for every row of a finished run."""
    results = read_results(run_dir)
    assert {r["status"] for r in results} == {"done"}
    return {r["id"]: (r["file"], mp4_variables(run_dir / r["file"])) for r in results}


@pytest.fixture
def batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    for name in ("PICTORY_API_KEY", "PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PICTORY_API_BASE_URL", raising=False)
    files = write_batch(tmp_path, 0)
    files["template"].write_text(json.dumps(TEMPLATE))
    return files


def run(files: dict[str, Path], manifest: Path, out: str, *extra: str) -> dict[str, Any]:
    argv = ["run", str(manifest), "--template", str(files["template"])]
    argv += ["--out", str(files["template"].parent / out), "--config", str(files["config"])]
    assert main([*argv, "--simulate=test", *extra]) == 0
    return rendered(files["template"].parent / out)


def test_workbook_and_semicolon_csv_render_the_same_videos_as_the_csv(
    batch: dict[str, Path],
) -> None:
    """Same row identities, output files and rendered variables from .xlsx (friendly headers,
    percentages, dates, an empty trailing row), ';'-separated CSV and the plain CSV."""
    folder = batch["template"].parent
    csv_path = folder / "plain.csv"
    csv_path.write_text(
        "name,city,offer,until\n" + "".join(",".join(f'"{v}"' for v in row) + "\n" for row in SHOWN)
    )
    semicolon = folder / "europe.csv"
    semicolon.write_text(
        "name;city;offer;until\n" + "".join(";".join(row) + "\n" for row in SHOWN),
        encoding="utf-8-sig",
    )
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Customers"
    sheet.append(["Name", "City", "Offer", "Until"])
    for row in ROWS:
        sheet.append(row)
    sheet.append([None, None, None, None])
    for r in range(2, len(ROWS) + 2):
        sheet[f"C{r}"].number_format = "0.0%"
        sheet[f"D{r}"].number_format = "dd/mm/yyyy"
    xlsx = folder / "customers.xlsx"
    workbook.save(xlsx)

    from_csv = run(batch, csv_path, "run-csv")
    shown = [dict(zip(["name", "city", "offer", "until"], row, strict=True)) for row in SHOWN]
    assert sorted(json.dumps(v, sort_keys=True) for _, v in from_csv.values()) == sorted(
        json.dumps(v, sort_keys=True) for v in shown
    )
    assert run(batch, xlsx, "run-xlsx") == from_csv
    assert run(batch, semicolon, "run-semicolon") == from_csv


def test_resume_and_report_read_the_manifest_with_the_recorded_options(
    batch: dict[str, Path],
) -> None:
    """``--encoding cp1252`` given to run is recorded: resume and report read the file the same
    way without it."""
    folder = batch["template"].parent
    path = folder / "latin.csv"
    rows = "".join(f"René {i},Zürich,5%,soon\n" for i in range(3))
    path.write_bytes(("name,city,offer,until\n" + rows).encode("cp1252"))
    argv = ["run", str(path), "--template", str(batch["template"]), "--out", str(folder / "r")]
    argv += ["--config", str(batch["config"]), "--simulate=test"]
    assert main(argv) == 2  # refused without --encoding
    assert main([*argv, "--encoding", "cp1252", "--max-renders", "1"]) == 1
    resume = ["resume", str(folder / "r"), "--simulate=test", "--max-renders", "10"]
    assert main(resume) == 0  # a larger cap than the recorded one, stated again
    assert main(["report", str(folder / "r")]) == 0
    assert {r["name"] for r in read_results(folder / "r")} == {f"René {i}" for i in range(3)}
