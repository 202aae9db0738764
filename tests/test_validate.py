"""Validation: every problem of every row, located, without any network."""

from __future__ import annotations

from pathlib import Path

from orchestrator.input.problems import MAX_STORED_PROBLEMS, Problem, ValidationReport
from orchestrator.input.row import ManifestOptions, ManifestRow
from orchestrator.input.template import load_template
from orchestrator.input.validate import validate_manifest
from orchestrator.input.validate_row import check_row

DATA = Path(__file__).parent / "data"
WELCOME = Path(__file__).parent.parent / "jobs" / "welcome"
GREETING = DATA / "greeting.pictai"


def located(report: ValidationReport) -> list[tuple[int | None, str | None, str]]:
    """(line, field, kind) of every stored problem, in report order."""
    return [(p.line, p.field, p.kind) for p in report.problems]


def test_welcome_sample_is_clean() -> None:
    """The shipped sample: 25 rows, no problems, no warnings."""
    report = validate_manifest(WELCOME / "manifest.csv", WELCOME / "welcome.pictai")
    assert (report.rows, report.problem_count, report.warnings, report.ok) == (25, 0, [], True)


def test_welcome_bad_sample_has_three_problems_on_three_lines() -> None:
    """The demo bad manifest: an empty value, a literal placeholder and an escaping output."""
    report = validate_manifest(WELCOME / "manifest-bad.csv", WELCOME / "welcome.pictai")
    assert located(report) == [
        (3, "first_name", "empty"),
        (4, "offer", "placeholder"),
        (6, "output", "output"),
    ]
    assert not report.ok and not report.fatal
    assert all(p.file == str(WELCOME / "manifest-bad.csv") for p in report.problems)


def test_problem_renders_file_line_field_message_and_hint() -> None:
    """``str(problem)`` is ``file:line: field 'x': message (hint)``."""
    problem = Problem("m.csv", 4, "offer", "is empty", "fill it in")
    assert str(problem) == "m.csv:4: field 'offer': is empty (fill it in)"
    assert str(Problem("m.csv", None, None, "no rows")) == "m.csv: no rows"


def test_missing_and_unknown_columns_are_each_one_problem_naming_their_rows() -> None:
    """A misspelt column with --strict-columns: 'company' missing, 'compnay' and 'email'
    unknown, once each, with the rows they affect."""
    strict = ManifestOptions(strict_columns=True)
    report = validate_manifest(DATA / "missing-unknown.csv", GREETING, options=strict)
    assert located(report) == [
        (2, "company", "missing"),
        (2, "compnay", "unknown"),
        (2, "email", "unknown"),
    ]
    assert report.problem_count == 3
    assert "affects 2 rows (lines 2, 3)" in report.problems[0].message
    assert report.problems[1].hint is not None


def test_empty_and_whitespace_values_are_problems() -> None:
    """A used variable that is empty or only spaces would leave a blank in the video."""
    report = validate_manifest(DATA / "empty-values.csv", GREETING)
    assert located(report) == [(2, "first_name", "empty"), (3, "company", "empty")]


def test_value_holding_a_placeholder_is_a_problem() -> None:
    """``{{ first_name }}`` as a value would appear literally."""
    report = validate_manifest(DATA / "placeholder-value.csv", GREETING)
    assert located(report) == [(2, "first_name", "placeholder")]


def test_very_long_value_is_a_problem() -> None:
    """A 6000-character value exceeds the limit and is reported on its row and field."""
    report = validate_manifest(DATA / "long-value.csv", GREETING)
    assert located(report) == [(3, "company", "too-long")]


def test_duplicate_ids_point_at_the_first_use() -> None:
    """The second row using id c1 is a problem naming line 2."""
    report = validate_manifest(DATA / "duplicate-ids.csv", GREETING)
    assert located(report) == [(4, "id", "duplicate")]
    assert "line 2" in report.problems[0].message


def test_rows_without_id_repeating_the_same_variables_are_duplicates() -> None:
    """Same template and (stripped) values: the same video twice."""
    report = validate_manifest(DATA / "duplicate-rows.csv", GREETING)
    assert located(report) == [(4, None, "duplicate")]
    assert "line 2" in report.problems[0].message


def test_output_names_differing_only_in_case_collide() -> None:
    """``ann.mp4`` and ``ANN`` are the same file on Windows and macOS."""
    report = validate_manifest(DATA / "duplicate-outputs.csv", GREETING)
    assert located(report) == [(4, "output", "duplicate")]


def test_every_unsafe_output_name_is_reported_on_its_line() -> None:
    """Nine bad names on lines 2-10, one fine name on line 11."""
    report = validate_manifest(DATA / "output-names.csv", GREETING)
    assert located(report) == [(line, "output", "output") for line in range(2, 11)]


def test_bad_ids_are_reported_on_the_id_field() -> None:
    """Spaces, a leading '-' and 129 characters are each a problem on their line."""
    report = validate_manifest(DATA / "bad-ids.csv", GREETING)
    assert located(report) == [(3, "id", "id"), (4, "id", "id"), (5, "id", "id")]


def test_each_flow_knows_its_fields() -> None:
    """A storyboard row filling template variables mixes flows and lacks its text; 'dance' is no
    flow; empty and 'template' rows pass."""
    report = validate_manifest(DATA / "flows.csv", GREETING)
    assert located(report) == [
        (3, "first_name", "flow-mix"),
        (3, "company", "flow-mix"),
        (3, "text", "missing"),
        (4, "flow", "flow"),
    ]
    assert "unknown flow 'dance'" in report.problems[3].message


def test_row_without_any_template_is_a_problem() -> None:
    """No --template and an empty template cell: the row cannot render."""
    report = validate_manifest(DATA / "templates-column.csv", None)
    kinds = located(report)
    assert (4, "template", "template") in kinds
    assert report.problems[0].line == 3  # missing.pictai, the first bad one


def test_template_column_resolves_relative_to_the_manifest_and_reports_bad_files() -> None:
    """greeting.pictai loads; missing.pictai and not-json.pictai are problems on their rows."""
    report = validate_manifest(DATA / "templates-column.csv", GREETING)
    assert located(report) == [(3, "template", "template"), (5, "template", "template")]
    assert "not found" in report.problems[0].message
    assert "not-json.pictai:3" in report.problems[1].message
    assert list(report.templates) == [GREETING.resolve()]


def test_broken_default_template_is_one_fatal_problem() -> None:
    """A --template that cannot load stops before reading rows, located in the template."""
    report = validate_manifest(DATA / "duplicate-ids.csv", DATA / "not-json.pictai")
    assert (report.fatal, report.rows, report.problem_count) == (True, 0, 1)
    assert (report.problems[0].file, report.problems[0].line) == (
        str(DATA / "not-json.pictai"),
        3,
    )


def test_template_without_variables_only_warns_about_variable_columns() -> None:
    """Columns a variable-free template ignores are one warning, not per-row problems."""
    report = validate_manifest(DATA / "bom-crlf.csv", DATA / "no-variables.pictai")
    assert report.ok
    assert [(w.file, w.kind) for w in report.warnings] == [
        (str(DATA / "no-variables.pictai"), "no-variables")
    ]


def test_template_placeholder_warnings_are_passed_on() -> None:
    """Malformed placeholders in the template surface as warnings with their JSON path."""
    report = validate_manifest(DATA / "bom-crlf.csv", DATA / "malformed-placeholders.pictai")
    assert "scenes[0].sentence" in [w.field for w in report.warnings]


def test_reserved_column_in_another_case_is_read_as_it_and_said_once() -> None:
    """``ID`` is read as the reserved ``id``, and a note says so."""
    report = validate_manifest(DATA / "reserved-case.csv", GREETING)
    assert (report.ok, report.rows) == (True, 1)
    assert any("header 'ID' is read as 'id'" in note for note in report.notes)


def test_reserved_column_in_another_case_with_strict_headers_gets_a_did_you_mean() -> None:
    """With --strict-headers ``ID`` is not the reserved ``id``: an unknown column with a hint."""
    strict = ManifestOptions(strict_headers=True)
    report = validate_manifest(DATA / "reserved-case.csv", GREETING, options=strict)
    assert located(report) == [(2, "ID", "unknown")]
    assert report.problems[0].hint is not None and "'id'" in report.problems[0].hint


def test_a_ragged_row_is_a_located_problem_and_the_scan_goes_on() -> None:
    """A row with too few cells is one problem at its line and field; it does not stop the
    scan (issue: validate listed only the first such row)."""
    report = validate_manifest(DATA / "ragged-short.csv", GREETING)
    assert not report.fatal and report.problem_count == 1
    assert located(report) == [(3, "company", "ragged")]


def test_unreadable_manifest_is_one_fatal_problem(tmp_path: Path) -> None:
    """A missing manifest or unknown extension becomes a problem, not an exception."""
    report = validate_manifest(tmp_path / "rows.xlsx", GREETING)
    assert (report.fatal, report.problem_count) == (True, 1)


def test_json_manifest_is_validated_like_csv() -> None:
    """Extra keys in a JSON manifest are unknown columns with --strict-columns, once each, in
    key order."""
    strict = ManifestOptions(strict_columns=True)
    report = validate_manifest(DATA / "rows.json", GREETING, options=strict)
    assert located(report) == [(3, key, "unknown") for key in ("age", "vip", "score", "note")]


def test_problems_are_all_counted_but_only_the_first_thousand_kept(tmp_path: Path) -> None:
    """1200 bad rows: problem_count is 1200, the stored list stops at the cap."""
    path = tmp_path / "many.csv"
    path.write_text("id,first_name,company\n" + "".join(f"c {i},Ann,Acme\n" for i in range(1200)))
    report = validate_manifest(path, GREETING)
    assert (report.rows, report.problem_count, len(report.problems)) == (
        1200,
        1200,
        MAX_STORED_PROBLEMS,
    )
    assert "1000 listed" in report.summary()


def test_check_row_returns_every_problem_of_a_row_at_once() -> None:
    """One row, four faults: all come back, none raised."""
    row = ManifestRow(line=9, id="bad id", output="../x", variables={"first_name": ""})
    problems = check_row(row, load_template(GREETING), Path("m.csv"))
    assert sorted((p.field, p.kind) for p in problems) == [
        ("company", "missing"),
        ("first_name", "empty"),
        ("id", "id"),
        ("output", "output"),
    ]
    assert {p.line for p in problems} == {9}


def test_every_ragged_row_is_listed_not_only_the_first(tmp_path: Path) -> None:
    """Rows with too few or too many cells are each a located problem; the good rows between
    them are still checked."""
    manifest = tmp_path / "ragged.csv"
    manifest.write_text("id,name\nr1\nr2,Bob\nr3,Cy,extra\nr4\n")
    template = tmp_path / "t.pictai"
    template.write_text('{"scenes": [{"sceneId": 1, "sentence": "Hi {{name}}"}]}')
    report = validate_manifest(manifest, template)
    ragged = [p for p in report.problems if p.kind == "ragged"]
    assert [p.line for p in ragged] == [2, 4, 5]
    assert report.rows == 4 and not report.ok
