"""Bad input through the CLI: every case is refused with exit 2 and a message that says where,
before anything is sent, and never with a traceback.

The readers' own tests (tests/test_manifest.py, tests/test_validate.py) pin each message; here each
corpus file goes through ``orchestrator validate`` and ``orchestrator run`` as a user types them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import run_args, write_batch

DATA = Path(__file__).resolve().parents[1] / "data"
GREETING = DATA / "greeting.pictai"

# corpus manifest → the location its first problem names (":LINE", or "" for the whole file)
BAD_MANIFESTS = {
    "array-of-strings.json": ":3",
    "bad-ids.csv": ":3",
    "broken-line.jsonl": ":3",
    "broken.json": ":3",
    "duplicate-header.csv": ":1",
    "duplicate-ids.csv": ":4",
    "duplicate-key.json": ":2",
    "duplicate-outputs.csv": ":4",
    "duplicate-rows.csv": ":4",
    "empty-array.json": ":1",
    "empty-header-cell.csv": ":1",
    "empty-values.csv": ":2",
    "empty.csv": "",
    "flows.csv": ":3",
    "header-only.csv": ":1",
    "long-value.csv": ":3",
    "missing-unknown.csv": ":2",
    "nested-value.json": ":3",
    "not-array.json": ":1",
    "not-object-line.jsonl": ":2",
    "not-utf8.csv": ":3",
    "output-names.csv": ":2",
    "placeholder-value.csv": ":2",
    "ragged-long.csv": ":3",
    "ragged-short.csv": ":3",
    "stray-quote.csv": ":2",
    "templates-column.csv": ":3",
    "trailing-comma.json": ":3",
    "unclosed-quote.csv": ":3",
}
CLEAN_MANIFESTS = [
    "blank-lines.csv",
    "bom-crlf.csv",
    "quoted-newlines.csv",
    "rows.jsonl",
    "semicolon.csv",  # delimiter sniffed
    "reserved-case.csv",  # 'ID' read as 'id'
    "rows.json",  # keys the template does not use: extra columns, carried through
]
# corpus template (with a clean manifest) → the location its problem names
BAD_TEMPLATES = {
    "not-json.pictai": ":3",
    "not-utf8.pictai": ":3",
    "no-scenes.pictai": "",
    "top-level-array.pictai": ":1",
}


def test_every_corpus_file_is_covered_here() -> None:
    """The tables above list every file of tests/data, so a new corpus case gets a CLI test."""
    listed = set(BAD_MANIFESTS) | set(CLEAN_MANIFESTS) | set(BAD_TEMPLATES)
    listed |= {"greeting.pictai", "malformed-placeholders.pictai", "no-variables.pictai"}
    corpus = {p.name for p in DATA.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert corpus == listed  # folders (a ledger written by the previous release) are not inputs


def _quiet(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return out, err


@pytest.fixture
def sim(make_sim: Any, api_env: Any) -> Any:
    """A simulator the CLI points at, to prove refused runs send nothing."""
    handle = make_sim()
    api_env(handle)
    return handle


def _sent(sim: Any) -> int:
    """API requests the simulator saw (its own stats reads excluded)."""
    requests: dict[str, int] = sim.stats()["requests"]
    return sum(n for route, n in requests.items() if not route.startswith("GET /__sim__"))


@pytest.mark.parametrize("name", sorted(BAD_MANIFESTS))
def test_bad_manifest_is_refused_by_validate_with_its_location(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``validate`` lists the problem with file and line, one per line, and exits 2."""
    path = DATA / name
    assert main(["validate", str(path), "--template", str(GREETING)]) == 2
    out, err = _quiet(capsys)
    assert out.splitlines()[0].startswith(f"{path}{BAD_MANIFESTS[name]}: ")
    assert err.strip().endswith("problem(s)") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", sorted(BAD_MANIFESTS))
def test_bad_manifest_is_refused_by_run_before_anything_is_sent(
    name: str, tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run`` refuses the manifest with exit 2: one line saying nothing was sent, then one line
    per problem with its location. The simulator saw no request."""
    path = DATA / name
    args = ["run", str(path), "--template", str(GREETING), "--out", str(tmp_path / "run")]
    assert main(args) == 2
    _, err = _quiet(capsys)
    lines = err.splitlines()
    assert lines[0].startswith("orchestrator: error: ") and "nothing was sent" in lines[0]
    assert lines[1].strip().startswith(f"{path}{BAD_MANIFESTS[name]}: ")
    assert _sent(sim) == 0


@pytest.mark.parametrize("name", CLEAN_MANIFESTS)
def test_clean_corpus_manifest_validates(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The corpus's awkward-but-valid files (BOM, CRLF, blank lines, quoted newlines, JSON Lines)
    pass ``validate`` with exit 0."""
    assert main(["validate", str(DATA / name), "--template", str(GREETING)]) == 0
    out, _ = _quiet(capsys)
    assert out.strip().endswith("no problems")


@pytest.mark.parametrize("name", sorted(BAD_TEMPLATES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_template_is_refused_with_its_location(
    name: str, command: str, tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken .pictai stops ``validate`` and ``run`` with exit 2 naming the template file (and
    line where there is one); nothing is sent."""
    template = DATA / name
    args = [command, str(DATA / "bom-crlf.csv"), "--template", str(template)]
    if command == "run":
        args += ["--out", str(tmp_path / "run")]
    assert main(args) == 2
    out, err = _quiet(capsys)
    assert f"{template}{BAD_TEMPLATES[name]}: " in out + err
    assert _sent(sim) == 0


def _case_args(case: str, tmp_path: Path) -> tuple[list[str], str]:
    """The CLI arguments of one bad-usage case and a phrase its error must hold."""
    batch = write_batch(tmp_path, 2)
    manifest, template = str(batch["manifest"]), str(batch["template"])
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[limits]\nmax_rows_in_flihgt = 3\n")
    cases: dict[str, tuple[list[str], str]] = {
        "missing manifest": (
            ["run", str(tmp_path / "absent.csv"), "--template", template],
            f"{tmp_path / 'absent.csv'}: manifest file not found",
        ),
        "missing template": (
            ["run", manifest, "--template", str(tmp_path / "absent.pictai")],
            f"{tmp_path / 'absent.pictai'}: template file not found",
        ),
        "folder as manifest": (
            ["run", str(folder), "--template", template],
            f"{folder}: is a folder, not a file",
        ),
        "folder as template": (
            ["run", manifest, "--template", str(tmp_path)],
            f"{tmp_path}: is a folder, not a .pictai file",
        ),
        "folder as config": (
            [*run_args(batch)[:-2], "--config", str(tmp_path)],
            f"{tmp_path}: cannot read config file",
        ),
        "missing config": (
            [*run_args(batch)[:-2], "--config", str(tmp_path / "absent.toml")],
            f"{tmp_path / 'absent.toml'}: cannot read config file",
        ),
        "unknown config key": (
            [*run_args(batch)[:-2], "--config", str(unknown)],
            f"{unknown}: unknown key 'limits.max_rows_in_flihgt'",
        ),
        "--out is a file": (
            ["run", manifest, "--template", template, "--out", str(a_file)],
            f"{a_file}: cannot use it as the run directory",
        ),
        "--out under a file": (
            ["run", manifest, "--template", template, "--out", str(a_file / "run")],
            f"{a_file / 'run'}: cannot use it as the run directory",
        ),
        "--concurrency 0": (run_args(batch, "--concurrency", "0"), "--concurrency must be"),
        "--max-renders 0": (run_args(batch, "--max-renders", "0"), "--max-renders must be"),
        "--halt-after 0": (run_args(batch, "--halt-after", "0"), "--halt-after '0'"),
        "--halt-after -3": (run_args(batch, "--halt-after=-3"), "--halt-after '-3'"),
        "--halt-after abc": (run_args(batch, "--halt-after", "abc"), "--halt-after 'abc'"),
        "--halt-after 150%": (run_args(batch, "--halt-after", "150%"), "--halt-after '150%'"),
        "--window without end": (run_args(batch, "--window", "22:00"), "--window '22:00'"),
        "--window 25:00": (run_args(batch, "--window", "25:00-06:00"), "'25:00' is not a time"),
        "--until 7pm": (run_args(batch, "--until", "7pm"), "--until: '7pm' is not a time"),
        "--window and --until": (
            run_args(batch, "--window", "22:00-06:00", "--until", "06:00"),
            "either --window or --until",
        ),
        "resume a folder without ledger": (
            ["resume", str(tmp_path)],
            f"{tmp_path} holds no ledger",
        ),
        "report a folder without ledger": (
            ["report", str(tmp_path)],
            f"{tmp_path} holds no ledger",
        ),
    }
    return cases[case]


BAD_USAGE = [
    "missing manifest",
    "missing template",
    "folder as manifest",
    "folder as template",
    "folder as config",
    "missing config",
    "unknown config key",
    "--out is a file",
    "--out under a file",
    "--concurrency 0",
    "--max-renders 0",
    "--halt-after 0",
    "--halt-after -3",
    "--halt-after abc",
    "--halt-after 150%",
    "--window without end",
    "--window 25:00",
    "--until 7pm",
    "--window and --until",
    "resume a folder without ledger",
    "report a folder without ledger",
]


@pytest.mark.parametrize("case", BAD_USAGE)
def test_bad_usage_is_one_error_line_and_exit_2(
    case: str, tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad path, option value or config is refused with exit 2 and an error that names what
    was wrong (path, option, key), before anything is sent."""
    args, phrase = _case_args(case, tmp_path)
    assert main(args) == 2
    _, err = _quiet(capsys)
    assert phrase in err
    assert err.startswith("orchestrator: error: ")
    assert _sent(sim) == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_out_is_refused(
    tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run directory inside a folder we may not write is refused with exit 2, not a traceback."""
    batch = write_batch(tmp_path, 1)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    batch["out"] = locked / "run"
    try:
        assert main(run_args(batch)) == 2
    finally:
        locked.chmod(0o755)
    _, err = _quiet(capsys)
    assert f"{locked / 'run'}: cannot use it as the run directory" in err
    assert _sent(sim) == 0


@pytest.mark.parametrize("value", ["abc", "1.5"])
def test_non_integer_concurrency_is_a_usage_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value argparse cannot convert is a usage message and exit 2 (argparse's own)."""
    batch = write_batch(tmp_path, 1)
    with pytest.raises(SystemExit) as exited:
        main(run_args(batch, "--concurrency", value))
    assert exited.value.code == 2
    _, err = _quiet(capsys)
    assert "--concurrency: invalid int value" in err


def test_world_readable_config_holding_a_key_warns_without_echoing_it(
    tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file others can read that holds an API key gets a chmod 600 warning on stderr; the
    run goes on, and the key is printed nowhere."""
    batch = write_batch(
        tmp_path, 1, extra_config='[api]\nuser_agent = "pictai_PLANTED_in_config"\n'
    )
    batch["config"].chmod(0o644)
    assert main(run_args(batch)) == 0
    out, err = _quiet(capsys)
    assert f"warning: {batch['config']} holds a secret" in err and "chmod 600" in err
    assert "pictai_PLANTED_in_config" not in out + err


def test_private_config_does_not_warn(
    tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same config with mode 600 runs without the warning."""
    batch = write_batch(
        tmp_path, 1, extra_config='[api]\nuser_agent = "pictai_PLANTED_in_config"\n'
    )
    assert main(run_args(batch)) == 0
    _, err = _quiet(capsys)
    assert "warning" not in err


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_nested_too_deeply_is_one_line_not_a_traceback(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value nested 200,000 deep (a hostile file) is refused with its line, exit 2: Python's
    JSON reader gives up with a RecursionError, which becomes a problem like any other."""
    deep = "[" * 200_000 + "]" * 200_000
    body = f'[{{"name": {deep}}}]' if suffix == ".json" else f'{{"name": {deep}}}\n'
    path = tmp_path / f"deep{suffix}"
    path.write_text(body, encoding="utf-8")
    assert main(["validate", str(path), "--template", str(GREETING)]) == 2
    out, _ = _quiet(capsys)
    assert out.splitlines()[0].startswith(f"{path}:1: ")
    assert "nested too deeply" in out


def test_a_workbook_with_expanding_xml_entities_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A "billion laughs" sheet (entities nested ten deep) is refused with the cause named and
    exit 2, before any XML parser expands anything: a workbook never holds a DTD."""
    import zipfile

    from openpyxl import Workbook

    plain = tmp_path / "plain.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "name", "city"])
    sheet.append(["a", "Ann", "Oslo"])
    book.save(plain)
    entities = "".join(
        f'<!ENTITY e{i} "{(f"&e{i - 1};" if i > 1 else "ha") * 10}">' for i in range(1, 10)
    )
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                head, sep, rest = text.partition("?>")
                doctype = f"<!DOCTYPE w [{entities}]>"
                text = f"{head}{sep}{doctype}{rest}" if sep else doctype + text
                data = text.replace("<sheetData>", "<sheetData>&e9;", 1).encode()
            dst.writestr(item, data)
    assert main(["validate", str(bomb), "--template", str(GREETING)]) == 2
    out, _ = _quiet(capsys)
    assert "cannot read the workbook safely" in out and "XML entities" in out


def _declared_bomb(tmp_path: Path) -> Path:
    """A small workbook whose zip claims its sheet unzips to 2.6 GB: what a zip bomb looks like
    from its directory (the real 2.6 GB one is refused the same way: docs/manifest.md#limits)."""
    import zipfile

    from openpyxl import Workbook

    path = tmp_path / "bomb.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "city"])
    sheet.append(["Ann", "Oslo"])
    book.save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        names = [info.filename for info in archive.infolist()]
    at = -1
    for _ in names:  # the central directory entries, in order
        at = data.index(b"PK\x01\x02", at + 1)
        length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + length] == b"xl/worksheets/sheet1.xml":
            data[at + 24 : at + 28] = (2_600_000_000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def _hostile(name: str, tmp_path: Path) -> tuple[Path, str]:
    """A hostile manifest and the phrase its one problem line must hold."""
    if name == "bomb.xlsx":
        return _declared_bomb(tmp_path), "xl/worksheets/sheet1.xml unzips to 2,600,000,000 bytes"
    path = tmp_path / name
    if name == "long-line.jsonl":
        path.write_text('{"name": "Ann", "city": "Oslo"}\n{"name": "' + "a" * 1_100_000 + '"}\n')
        return path, "this line is longer than 1,048,576 bytes"
    path.write_text('[{"name": "Ann", "city": "Oslo"},\n{"name": "' + "a" * 1_100_000 + '"}]')
    return path, "array item 2 is longer than 1,048,576 characters"


@pytest.mark.parametrize("name", ["bomb.xlsx", "long-line.jsonl", "long-item.json"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_hostile_manifest_is_one_line_exit_2_and_nothing_sent(
    name: str, command: str, tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A workbook claiming 2.6 GB of sheet, a 1 MB line, a 1 MB array item: each is one problem
    naming its file and bound, exit 2, no traceback, nothing sent."""
    path, phrase = _hostile(name, tmp_path)
    args = [command, str(path), "--template", str(GREETING)]
    if command == "run":
        args += ["--out", str(tmp_path / "run")]
    assert main(args) == 2
    out, err = _quiet(capsys)
    problems = [line.strip() for line in (out + err).splitlines() if phrase in line]
    assert len(problems) == 1 and problems[0].startswith(str(path))
    assert _sent(sim) == 0
