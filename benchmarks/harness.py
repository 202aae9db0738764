"""Processes and files for the benchmarks: the CLI as a measured child, batches, ledgers.

Both the simulator (``orchestrator.simulator.process.SimProcess``) and the orchestrator run as
separate processes, so the orchestrator's CPU time and peak RSS (``os.wait4``'s rusage) are its
own, and the simulator's work is not counted.
Every wait here is bounded: a child that outlives its deadline is killed and reported.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WAIT_POLL_S = 0.05
STOP_GRACE_S = 10.0
"""Between the signals that stop a child past its deadline."""
TEMPLATE = {
    "projectName": "bench",
    "audio": {"selectedVoiceOverTrack": "Adam, male"},
    "scenes": [
        {"sceneId": 1, "sentence": "Hello {{name}}!", "lines": [{"text": "Hello {{ name }}!"}]},
        {"sceneId": 2, "sentence": "Greetings from {{city}}."},
    ],
}
NON_API_PREFIXES = ("/__",)
"""Simulator routes that are not Pictory API calls (CDN downloads, storage, stats)."""
SETUP_ROUTES = ("POST /v1/oauth2/token", "POST /v1/templates")
"""Once-per-run API calls, left out of the per-row request count."""


def api_requests(stats: Mapping[str, Any]) -> tuple[int, int]:
    """``(per-row API requests, setup requests)`` from simulator stats (CDN and stats excluded)."""
    rows = setup = 0
    for route, count in stats["requests"].items():
        path = route.split(" ", 1)[1] if " " in route else route
        if path.startswith(NON_API_PREFIXES):
            continue
        if route in SETUP_ROUTES:
            setup += count
        else:
            rows += count
    return rows, setup


@dataclass
class Measured:
    """A finished child: exit code, wall time, CPU time (user + system) and peak RSS."""

    exit_code: int
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    stderr_tail: str


def measure(
    argv: list[str], *, env: Mapping[str, str] | None, log: Path, timeout_s: float
) -> Measured:
    """Run ``argv``; rusage comes from ``os.wait4`` (this child only). Past ``timeout_s`` it gets
    SIGINT (a run drains and exits 130), a second SIGINT (stop at once), then SIGKILL, each
    ``STOP_GRACE_S`` (at most a quarter of ``timeout_s``) apart."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, env=dict(env) if env is not None else None, stdout=err, stderr=err
        )
        deadline = started + timeout_s
        # Past the deadline: SIGINT (drain), SIGINT again (stop at once), then SIGKILL.
        signals = [signal.SIGINT, signal.SIGINT, signal.SIGKILL]
        stopping = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if signals and time.monotonic() > deadline:
                proc.send_signal(signals.pop(0))
                deadline += min(STOP_GRACE_S, timeout_s / 4)
                stopping = True
            time.sleep(WAIT_POLL_S)
        wall_s = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = log.read_text(errors="replace")[-2000:]
    if stopping:
        tail = f"stopped after {timeout_s:.0f} s\n{tail}"
    return Measured(
        exit_code=proc.returncode,
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,  # Linux reports kilobytes
        stderr_tail=tail,
    )


def orchestrator_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


def write_batch(folder: Path, rows: int) -> tuple[Path, Path]:
    """A template and a CSV manifest of ``rows`` rows (``id,name,city``) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "bench.pictai"
    template.write_text(json.dumps(TEMPLATE))
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city"])
        writer.writerows([f"row-{i:07d}", f"Name {i}", f"City, {i % 997}"] for i in range(rows))
    return manifest, template


def write_xlsx_batch(folder: Path, rows: int, *, shared: bool = True) -> tuple[Path, Path]:
    """The same batch as ``write_batch``, as an Excel workbook written streamed.

    ``shared``: texts in a shared-string table, with a dimension and a style per row's cells, as
    Excel and Google Sheets write them; otherwise openpyxl's write-only output (inline strings,
    no dimension)."""
    manifest, template = write_batch(folder, 0)
    manifest.unlink()
    path = folder / "manifest.xlsx"
    if not shared:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Customers")
        sheet.append(["id", "name", "city"])
        for i in range(rows):
            sheet.append([f"row-{i:07d}", f"Name {i}", f"City, {i % 997}"])
        workbook.save(path)
        return path, template
    _write_shared_xlsx(path, rows)
    return path, template


_XLSX_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
    'openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="'
    'application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
    'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="'
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
    'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"'
    '/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.styles+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"'
    "/></Relationships>",
    "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.'
    'openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships"><sheets><sheet name="Customers" sheetId="1" r:id="rId1"/>'
    "</sheets></workbook>",
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="'
    'http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
    'http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="'
    'worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/><Relationship '
    'Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>',
    "xl/styles.xml": '<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.'
    'openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="'
    'Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill>'
    '</fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" '
    'fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" '
    'fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs><cellStyles count="1"><cellStyle '
    'name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
}
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _write_shared_xlsx(path: Path, rows: int) -> None:
    """A workbook as Excel lays it out (shared strings, dimension, ``r`` on rows and cells),
    written part by part so a million rows never sit in memory."""
    import zipfile

    cities = 997
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _XLSX_PARTS.items():
            archive.writestr(name, text)
        # shared strings: 0-2 the header, 3.. the cities, then each row's id and name
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            count = 3 + cities + 2 * rows
            f.write(
                f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_MAIN_NS}" '
                f'count="{count}" uniqueCount="{count}">'.encode()
            )
            head = ["id", "name", "city"] + [f"City, {c}" for c in range(cities)]
            f.write("".join(f"<si><t>{t}</t></si>" for t in head).encode())
            for i in range(rows):
                f.write(f"<si><t>row-{i:07d}</t></si><si><t>Name {i}</t></si>".encode())
            f.write(b"</sst>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(
                f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN_NS}">'
                f'<dimension ref="A1:C{rows + 1}"/><sheetData>'.encode()
            )
            f.write(
                b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
                b'<c r="C1" t="s"><v>2</v></c></row>'
            )
            for i in range(rows):
                r = i + 2
                first = 3 + cities + 2 * i
                f.write(
                    f'<row r="{r}"><c r="A{r}" t="s"><v>{first}</v></c><c r="B{r}" t="s">'
                    f'<v>{first + 1}</v></c><c r="C{r}" t="s"><v>{3 + i % cities}</v></c>'
                    "</row>".encode()
                )
            f.write(b"</sheetData></worksheet>")


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    """A TOML config from ``{"section": {"key": value}}`` (numbers, booleans and strings)."""
    lines: list[str] = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        for key, value in keys.items():
            lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def downloaded_times(ledger: Path) -> tuple[float | None, list[float]]:
    """The first row's admission time, and the ``ts`` of every ``downloaded`` event, sorted."""
    first: float | None = None
    times: list[float] = []
    with ledger.open("rb") as f:
        for raw in f:
            if b'"e":"downloaded"' in raw:
                times.append(float(json.loads(raw)["ts"]))
            elif first is None and raw.startswith(b'{"e":"row"'):
                first = float(json.loads(raw)["ts"])
    return first, sorted(times)


def rerenders_recorded(ledger: Path) -> int:
    """Renders the ledger records beyond each row's first: retries after a failed render job."""
    jobs: dict[str, set[str]] = {}
    with ledger.open("rb") as f:
        for raw in f:
            if raw.startswith(b'{"e":"render_job"'):
                event = json.loads(raw)
                jobs.setdefault(event["row"], set()).add(event["job"])
    return sum(len(ids) - 1 for ids in jobs.values())


def overall_rate(first: float | None, times: list[float]) -> float | None:
    """Rows per second from the first row's admission to the last download (warm-up included)."""
    if first is None or not times or times[-1] <= first:
        return None
    return len(times) / (times[-1] - first)


def steady_rate(times: list[float], low: float = 0.1, high: float = 0.9) -> float | None:
    """Rows per second between the ``low`` and ``high`` fractions done (warm-up, tail excluded)."""
    if len(times) < 3:
        return None
    i, j = int(len(times) * low), min(len(times) - 1, int(len(times) * high))
    span = times[j] - times[i]
    return (j - i) / span if span > 0 else None


def read_results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="") as f:
        return list(csv.DictReader(f))
