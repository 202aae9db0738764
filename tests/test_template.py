"""Loading ``.pictai`` templates: variables found, raw bytes kept, bad files explained."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orchestrator.errors import TemplateError
from orchestrator.input.template import load_template, unresolved_placeholders

DATA = Path(__file__).parent / "data"
WELCOME = Path(__file__).parent.parent / "jobs" / "welcome" / "welcome.pictai"
REAL_PROJECT = Path("/work/shared/fixtures/pictory-sample-project.pictai")


def where(exc: TemplateError) -> tuple[str | None, int | None, str | None]:
    return exc.file, exc.line, exc.field


def test_variables_are_found_in_scene_text_with_spaces_inside_braces() -> None:
    """``{{first_name}}`` and ``{{ company }}`` both become stripped variable names."""
    template = load_template(DATA / "greeting.pictai")
    assert template.variables == frozenset({"first_name", "company"})
    assert template.warnings == ()


def test_content_is_the_raw_bytes_and_sha256_names_them() -> None:
    """The upload body is the file byte for byte; ``sha256`` is its hex digest."""
    raw = (DATA / "greeting.pictai").read_bytes()
    template = load_template(DATA / "greeting.pictai")
    assert template.content == raw
    assert template.sha256 == hashlib.sha256(raw).hexdigest()
    assert template.path == DATA / "greeting.pictai"


def test_welcome_sample_names_its_four_variables() -> None:
    """The shipped sample uses first_name, company, offer and manager."""
    template = load_template(WELCOME)
    assert template.variables == {"first_name", "company", "offer", "manager"}
    assert template.warnings == ()


@pytest.mark.skipif(not REAL_PROJECT.exists(), reason="the shared Pictory fixture is not present")
def test_real_pictory_project_loads_with_no_variables() -> None:
    """A project saved by Pictory's web app loads; it holds no placeholders and no warnings."""
    template = load_template(REAL_PROJECT)
    assert template.variables == frozenset()
    assert template.warnings == ()


def test_template_without_variables_loads_with_an_empty_set() -> None:
    """No placeholders is allowed: every row would get the same video."""
    assert load_template(DATA / "no-variables.pictai").variables == frozenset()


def test_missing_file_is_a_template_error_naming_the_path() -> None:
    """A path that does not exist says so, with the path and a hint about relative paths."""
    with pytest.raises(TemplateError, match="not found") as info:
        load_template(DATA / "nope.pictai")
    assert where(info.value) == (str(DATA / "nope.pictai"), None, None)
    assert info.value.hint is not None and "relative" in info.value.hint


def test_folder_is_not_a_template() -> None:
    """Pointing at a folder is refused with a clear message."""
    with pytest.raises(TemplateError, match="folder"):
        load_template(DATA)


def test_invalid_json_names_the_line_and_column() -> None:
    """A syntax error points at the line (3) and column where the JSON breaks."""
    with pytest.raises(TemplateError, match=r"not valid JSON.*column 19") as info:
        load_template(DATA / "not-json.pictai")
    assert where(info.value) == (str(DATA / "not-json.pictai"), 3, None)


def test_non_utf8_bytes_name_the_line() -> None:
    """A Latin-1 byte is reported on its line, with the byte value."""
    with pytest.raises(TemplateError, match="0xe9") as info:
        load_template(DATA / "not-utf8.pictai")
    assert where(info.value) == (str(DATA / "not-utf8.pictai"), 3, None)


def test_top_level_array_is_not_a_project() -> None:
    """A JSON array is valid JSON but not a Pictory project."""
    with pytest.raises(TemplateError, match="JSON array") as info:
        load_template(DATA / "top-level-array.pictai")
    assert where(info.value) == (str(DATA / "top-level-array.pictai"), 1, None)


def test_object_without_scenes_names_the_scenes_field() -> None:
    """A JSON object with no ``scenes`` list is rejected on the field ``scenes``."""
    with pytest.raises(TemplateError, match="'scenes'") as info:
        load_template(DATA / "no-scenes.pictai")
    assert where(info.value) == (str(DATA / "no-scenes.pictai"), None, "scenes")


def test_empty_scenes_list_is_rejected(tmp_path: Path) -> None:
    """``"scenes": []`` would render nothing, so it is an error too."""
    path = tmp_path / "empty.pictai"
    path.write_text('{"scenes": []}')
    with pytest.raises(TemplateError, match="empty list") as info:
        load_template(path)
    assert info.value.field == "scenes"


def test_malformed_placeholders_are_warnings_at_their_json_path() -> None:
    """Empty, unclosed and marked-up placeholders warn once each, at their first JSON path."""
    template = load_template(DATA / "malformed-placeholders.pictai")
    by_path = {w.json_path: w.message for w in template.warnings}
    assert "empty placeholder '{{ }}' (and in 2 more places)" in by_path["scenes[0].sentence"]
    assert "unbalanced braces" in by_path["scenes[1].sentence"]
    assert "not a plain name" in by_path["scenes[2].sentence"]
    assert "offer" not in template.variables and "first_name" not in template.variables


def test_names_differing_only_in_case_warn_because_pictory_upper_cases_them() -> None:
    """``{{Name}}`` and ``{{name}}`` are both variables, plus a warning that they clash."""
    template = load_template(DATA / "malformed-placeholders.pictai")
    assert {"Name", "name"} <= template.variables
    assert any("differ only in case" in w.message for w in template.warnings)


def test_object_keys_are_not_scanned_for_placeholders() -> None:
    """Only string values are text Pictory shows; a ``{{...}}`` key is ignored."""
    template = load_template(DATA / "malformed-placeholders.pictai")
    assert "not_a_variable" not in template.variables


def test_byte_order_mark_loads_with_a_warning(tmp_path: Path) -> None:
    """A BOM is tolerated (content kept as-is) but flagged, since Pictory may reject it."""
    path = tmp_path / "bom.pictai"
    path.write_bytes(b'\xef\xbb\xbf{"scenes": [{"sceneId": 1, "sentence": "Hi {{x}}"}]}')
    template = load_template(path)
    assert template.variables == {"x"}
    assert template.content.startswith(b"\xef\xbb\xbf")
    assert any("byte-order mark" in w.message for w in template.warnings)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", []),
        ("Hi {{ first_name }}!", ["{{ first_name }}"]),
        ("{{a}} and {{}}", ["{{a}}", "{{}}"]),
        ("only {{ opening", []),
        ("curly {single} braces", []),
    ],
)
def test_unresolved_placeholders_lists_literal_braces(value: str, expected: list[str]) -> None:
    """Values holding ``{{...}}`` would show it literally; each occurrence is returned."""
    assert unresolved_placeholders(value) == expected
