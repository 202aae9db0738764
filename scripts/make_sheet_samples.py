"""Write jobs/welcome/manifest.xlsx and manifest-semicolon.csv from jobs/welcome/manifest.csv.

The same 25 rows as a workbook (friendly headers, as a marketing team would type them) and as a
European-locale Excel export (';'-separated, UTF-8 with a BOM). ``tests/test_sheets.py`` checks
that all three render the same videos. Run: ``.venv/bin/python scripts/make_sheet_samples.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

WELCOME = Path(__file__).resolve().parent.parent / "jobs" / "welcome"
FRIENDLY = {"id": "ID", "first_name": "First Name", "output": "Output"}


def main() -> None:
    with (WELCOME / "manifest.csv").open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Customers"
    sheet.append([FRIENDLY.get(name, name.replace("_", " ").title()) for name in header])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([value or None for value in row])
    sheet.freeze_panes = "A2"
    workbook.save(WELCOME / "manifest.xlsx")
    with (WELCOME / "manifest-semicolon.csv").open("w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f, delimiter=";", lineterminator="\r\n").writerows([header, *rows])


if __name__ == "__main__":
    main()
