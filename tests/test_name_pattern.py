"""``--name PATTERN``: video file names from a row's columns, made safe, confined and unique
(``orchestrator.input.names``), checked by validate before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import UserError
from orchestrator.input.identity import MAX_OUTPUT_NAME_CHARS
from orchestrator.input.names import parse_pattern, pattern_name
from orchestrator.input.row import ManifestOptions, ManifestRow
from orchestrator.input.rows import TemplateCache, iter_row_jobs
from orchestrator.input.validate import validate_manifest
from orchestrator.run.options import RunOptions
from orchestrator.run.triage import versioned_name

TEMPLATE = {"projectName": "t", "scenes": [{"sceneId": 1, "sentence": "Hi {{first_name}}"}]}


def _name(pattern: str, first_name: str, row_id: str = "17") -> str:
    row = ManifestRow(line=4, id=row_id, variables={"first_name": first_name})
    name, problem = pattern_name(parse_pattern(pattern), row, row_id)
    assert problem is None, problem
    return name


def _batch(tmp_path: Path, lines: list[str]) -> tuple[Path, Path]:
    template = tmp_path / "t.pictai"
    template.write_text(json.dumps(TEMPLATE))
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(["id,first_name,segment", *lines]) + "\n")
    return manifest, template


def test_names_come_from_the_pattern() -> None:
    """Any column and {id} fill the pattern; the extension is ours (a pattern's own dropped)."""
    assert _name("{first_name}-{id}", "ann") == "ann-17.mp4"
    assert _name("welcome_{first_name}.mp4", "Ann") == "welcome_Ann.mp4"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../../etc/passwd", "etc-passwd-17.mp4"),
        ("..\\..\\Windows\\System32", "Windows-System32-17.mp4"),
        ("Anna Müller", "Anna-Muller-17.mp4"),
        ("Straße  & Søn", "Strasse-Son-17.mp4"),
        ("ﬁle\x00\x1f<b>:c|d?*", "file-b-c-d-17.mp4"),
        (".hidden", "hidden-17.mp4"),
        ("50% off #1", "50-off-1-17.mp4"),
    ],
)
def test_unsafe_characters_are_made_safe_and_confined(
    tmp_path: Path, value: str, expected: str
) -> None:
    """Separators, ``..``, control and Windows-reserved characters, accents: each made plain,
    so the name is one file inside the videos folder and a URL path segment as it is."""
    name = _name("{first_name}-{id}", value)
    assert name == expected
    videos = tmp_path / "videos"
    assert (videos / name).resolve().parent == videos.resolve()
    assert name.isascii() and ".." not in name and not name.startswith(".")


def test_reserved_windows_names_and_length_are_handled() -> None:
    """A device name gets a leading ``_``; a long value is cut, leaving room for ``.v2``."""
    assert _name("{first_name}", "CON") == "_CON.mp4"
    assert _name("{first_name}", "nul.txt") == "_nul.txt.mp4"
    long = _name("{first_name}-{id}", "x" * 500)
    assert len(long.removesuffix(".mp4") + ".v9999.mp4") <= MAX_OUTPUT_NAME_CHARS


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("campaign/{id}", "not a path"),
        ("{}", "names no column"),
        ("{first_name:>10}", "not a plain column"),
        ("{first_name.upper}", "not a plain column"),
        ("{first_name", "write fields as {column}"),
        ("welcome", "has no {column}"),
    ],
)
def test_a_bad_pattern_is_refused_before_any_row(pattern: str, says: str) -> None:
    """A pattern that cannot name rows is refused by ``run``'s options, one line saying why."""
    with pytest.raises(UserError, match=f"--name '{pattern}'.*{says}".replace("{", r"\{")):
        RunOptions(name_pattern=pattern).manifest_options()


def test_validate_lists_every_collision_with_both_lines(tmp_path: Path) -> None:
    """Two rows making the same name (case does not count) are refused, naming both lines."""
    manifest, template = _batch(tmp_path, ["1,ann,a", "2,ben,a", "3,Ann,b", "4,carl,a", "5,ann,c"])
    options = ManifestOptions(name_pattern="{first_name}")
    report = validate_manifest(manifest, template, options=options)
    said = [str(p) for p in report.problems]
    assert said == [
        f"{manifest}:4: field 'output': line 2 and line 4 both make the video file 'Ann.mp4' "
        "(make --name '{first_name}' unique per row, e.g. add {id})",
        f"{manifest}:6: field 'output': line 2 and line 6 both make the video file 'ann.mp4' "
        "(make --name '{first_name}' unique per row, e.g. add {id})",
    ]
    fixed = ManifestOptions(name_pattern="{first_name}-{id}")
    assert validate_manifest(manifest, template, options=fixed).ok


def test_an_unknown_column_is_named_once_with_the_known_ones(tmp_path: Path) -> None:
    """A misspelt column in the pattern is one problem naming it and the manifest's columns
    (extra columns too), not one per row."""
    manifest, template = _batch(tmp_path, ["1,ann,a", "2,ben,b"])
    options = ManifestOptions(name_pattern="{frist_name}-{id}")
    report = validate_manifest(manifest, template, options=options)
    assert report.problem_count == 1
    known = "(known: id, first_name, segment)"
    assert f"uses {{frist_name}}, which is not a column of the manifest {known}" in str(
        report.problems[0]
    )


def test_an_empty_value_is_a_problem_of_its_row(tmp_path: Path) -> None:
    """A row whose pattern column is empty (here an extra column) is refused with its line."""
    manifest, template = _batch(tmp_path, ["1,ann,a", "2,ben,", "3,carl,李"])
    options = ManifestOptions(name_pattern="{segment}-{first_name}")
    report = validate_manifest(manifest, template, options=options)
    said = [str(p) for p in report.problems]
    assert len(said) == 2
    assert said[0].startswith(f"{manifest}:3: field 'segment': {{segment}} of --name")
    assert "is empty in this row" in said[0]
    assert said[1].startswith(f"{manifest}:4: field 'segment': ")
    assert "leaves nothing for a file name" in said[1]


def test_rows_carry_the_pattern_name_and_an_output_cell_wins(tmp_path: Path) -> None:
    """The run's rows are named by the pattern; a row's own ``output`` cell still names it."""
    template = tmp_path / "t.pictai"
    template.write_text(json.dumps(TEMPLATE))
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,first_name,output\n1,Zoë,\n2,ben,custom\n")
    options = ManifestOptions(name_pattern="{first_name}-{id}")
    jobs = [job for _, job in iter_row_jobs(manifest, template, TemplateCache(), options=options)]
    assert [job.output_name for job in jobs] == ["Zoe-1.mp4", "custom.mp4"]


def test_the_version_suffix_follows_the_pattern(tmp_path: Path) -> None:
    """A changed row's new version: the name its values make now, one version past its
    previous video's (``-v2`` of earlier batches counts), skipping names taken on disk."""
    assert versioned_name(tmp_path, "ann-17.mp4") == "ann-17.v2.mp4"
    assert versioned_name(tmp_path, "anne-17.mp4", "videos/ann-17.mp4") == "anne-17.v2.mp4"
    assert versioned_name(tmp_path, "anne-17.mp4", "videos/ann-17.v2.mp4") == "anne-17.v3.mp4"
    assert versioned_name(tmp_path, "c001.mp4", "videos/c001-v2.mp4") == "c001.v3.mp4"
    (tmp_path / "ann-17.v2.mp4").write_bytes(b"")
    assert versioned_name(tmp_path, "ann-17.mp4") == "ann-17.v3.mp4"


async def test_a_row_keeps_the_name_it_was_admitted_under(tmp_path: Path) -> None:
    """Once a row's render is sent (or its video made), the name the ledger records stays its
    name, whatever the manifest's values make now; a row with no render yet takes the new one."""
    from orchestrator.config import Config
    from orchestrator.events import NullSink
    from orchestrator.input.rows import RowJob
    from orchestrator.ledger.row_state import RowState
    from orchestrator.run import triage

    async def named(state: RowState) -> str:
        job = RowJob(row_id="17", line=4, variables={}, template=None, output_name="Zoe-17.mp4")
        ledger: Any = None  # not written to: nothing is rendered again
        await triage.changed_values(state, job, Config(), ledger, NullSink(), tmp_path)
        return job.output_name

    assert await named(RowState(row="17", output="ann-17.mp4", render_job="job-1")) == (
        "ann-17.mp4"
    )
    assert await named(RowState(row="17", output="ann-17.mp4", render_intent=True)) == (
        "ann-17.mp4"
    )
    done = RowState(row="17", output="ann-17.mp4", file="videos/ann-17.mp4", status="done")
    assert await named(done) == "ann-17.mp4"
    assert await named(RowState(row="17", output="ann-17.mp4", status="failed")) == "Zoe-17.mp4"
