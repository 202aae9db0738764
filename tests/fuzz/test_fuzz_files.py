"""Every reader of a user's file, fed anything: it gives a result or one located error
(``UserError`` with file and, where there is one, line), never a traceback or a hang.

Readers: CSV, TSV, JSON and JSON Lines manifests (each under a row cap it must keep; workbooks:
``test_fuzz_workbooks``); ``.pictai`` templates; config TOML; ledger lines."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.config import load_config
from orchestrator.errors import ConfigError, ManifestError, RunDirError, TemplateError
from orchestrator.input import json_rows
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import ManifestOptions
from orchestrator.input.template import load_template
from orchestrator.ledger.file import replay

from .strategies import dumps, json_objects, json_values, raw_bytes


def _write(suffix: str, content: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / f"input{suffix}"
    path.write_bytes(content)
    return path


def _drain_manifest(path: Path, max_rows: int | None = None) -> None:
    """Every row of ``path`` is text (and there are at most ``max_rows``), or a located error
    stopped the reading."""
    try:
        rows = list(read_manifest(path, ManifestOptions(max_rows=max_rows)))
    except ManifestError as exc:
        assert exc.file == str(path)
        return
    for row in rows:
        assert isinstance(row.variables, dict)
        assert all(isinstance(v, str) for v in row.variables.values())
    assert max_rows is None or len(rows) <= max_rows


caps = st.one_of(st.none(), st.integers(min_value=1, max_value=4))


csv_cells = st.text(alphabet=st.sampled_from(list('ab ,;"\n\r\t\x00é{}')), max_size=12)
csv_texts = st.lists(st.lists(csv_cells, min_size=1, max_size=5), max_size=6).map(
    lambda rows: "\n".join(",".join(row) for row in rows)
)


@given(st.one_of(raw_bytes, csv_texts.map(str.encode)), caps)
@example(b"id,name\n1\n", None)
@example(b'\xef\xbb\xbfid,name\r\n"a,b","unclosed\n', None)
@example(b"id\n1\n2\n3\n", 2)
def test_csv_manifests_read_or_fail_located(content: bytes, max_rows: int | None) -> None:
    _drain_manifest(_write(".csv", content), max_rows)


tsv_texts = st.lists(st.lists(csv_cells, min_size=1, max_size=5), max_size=6).map(
    lambda rows: "\n".join("\t".join(row) for row in rows)
)


@given(
    st.one_of(
        raw_bytes,
        tsv_texts.map(str.encode),
        tsv_texts.map(lambda t: "\ufeff" + t).map(lambda t: t.encode("utf-16")),
    ),
    caps,
)
@example(b"id\tname\n1\tAnn\t\n", None)
def test_tsv_manifests_read_or_fail_located(content: bytes, max_rows: int | None) -> None:
    _drain_manifest(_write(".tsv", content), max_rows)


@given(
    st.one_of(
        raw_bytes,
        json_values.map(lambda v: dumps(v).encode()),
        st.lists(json_objects, max_size=4).map(lambda v: dumps(v).encode()),
    )
)
@example(b'[{"a": {"b": 1}}]')
@example(b'[{"a": 1, "a": 2}]')
def test_json_manifests_read_or_fail_located(content: bytes) -> None:
    _drain_manifest(_write(".json", content))


def _outcome(path: Path, max_rows: int) -> object:
    """The rows read, or the error's location and message: what a user sees."""
    try:
        return list(read_manifest(path, ManifestOptions(max_rows=max_rows)))
    except ManifestError as exc:
        return (exc.line, exc.message)


@given(
    st.one_of(
        st.lists(json_objects, max_size=4).map(lambda v: dumps(v).encode()),
        st.lists(json_objects, min_size=1, max_size=4).map(
            lambda v: dumps(v).replace("}", "} ", 1).replace('"', "", 1).encode()
        ),  # broken somewhere
        st.text(alphabet='[]{},:" \n0123456789.eE+-truefalsn\\ué', max_size=40).map(str.encode),
    ),
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=1, max_value=4),
)
@example(b'[{"a": true}, {"b": -1.5e3}, {"c": null}]', 3, 2)
def test_json_arrays_read_the_same_whatever_the_chunk_size(
    content: bytes, chunk_bytes: int, max_rows: int
) -> None:
    """Read in chunks of a few bytes (tokens cut anywhere), a JSON array gives the same rows,
    or the same error at the same line, as read in the usual 256 KiB chunks."""
    path = _write(".json", content)
    whole = _outcome(path, max_rows)
    usual = json_rows.JSON_CHUNK_BYTES
    try:
        json_rows.JSON_CHUNK_BYTES = chunk_bytes
        assert _outcome(path, max_rows) == whole
    finally:
        json_rows.JSON_CHUNK_BYTES = usual


@given(
    st.one_of(
        raw_bytes,
        st.lists(st.one_of(json_objects.map(dumps), st.text(max_size=20)), max_size=5).map(
            lambda lines: "\n".join(lines).encode()
        ),
    ),
    caps,
)
def test_jsonl_manifests_read_or_fail_located(content: bytes, max_rows: int | None) -> None:
    _drain_manifest(_write(".jsonl", content), max_rows)


scene = st.fixed_dictionaries(
    {"sceneId": json_values},
    optional={"sentence": json_values, "lines": json_values, "subtitles": json_values},
)
projects = st.fixed_dictionaries(
    {"scenes": st.one_of(st.lists(scene, max_size=4), json_values)},
    optional={"audio": json_values, "projectName": json_values},
)


@given(
    st.one_of(
        raw_bytes,
        json_values.map(lambda v: dumps(v).encode()),
        projects.map(lambda v: dumps(v).encode()),
    )
)
@example(b'{"scenes": [{"sentence": "{{ a }} {{A}} {{"}]}')
def test_templates_load_or_fail_located(content: bytes) -> None:
    path = _write(".pictai", content)
    try:
        template = load_template(path)
    except TemplateError as exc:
        assert exc.file == str(path)
    else:
        assert all(isinstance(name, str) and name for name in template.variables)


toml_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(min_value=-1e6, max_value=1e6),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
)
toml_keys = st.sampled_from(
    [
        "base_url",
        "max_requests_per_s",
        "max_rows_in_flight",
        "preview_interval_s",
        "enabled",
        "max_attempts",
        "public_url",
        "typo_key",
        "render_with_params",
        "listen_port",
    ]
)
toml_sections = st.sampled_from(["api", "limits", "poll", "retry", "run", "webhook", "nope"])


def _toml(tables: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


@given(
    st.one_of(
        raw_bytes,
        st.dictionaries(
            toml_sections, st.dictionaries(toml_keys, toml_values, max_size=4), max_size=4
        ).map(lambda t: _toml(t).encode()),
    )
)
@example(b"[api]\nbase_url = 3\n")
@example(b"[limits]\nmax_requests_per_s = -1\n")
def test_config_files_load_or_fail_naming_the_file(content: bytes) -> None:
    path = _write(".toml", content)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


EVENT_KINDS = [
    "run",
    "template",
    "row",
    "uploaded",
    "aux_job",
    "preview_job",
    "preview_ready",
    "render_intent",
    "render_refused",
    "render_job",
    "render_ready",
    "downloaded",
    "failed",
    "ambiguous",
    "retry",
    "made-up",
]
ledger_events = st.builds(
    lambda kind, row, extra: {"e": kind, **({"row": row} if row is not None else {}), **extra},
    st.sampled_from(EVENT_KINDS),
    st.one_of(st.none(), st.text(max_size=6), st.integers()),
    st.dictionaries(
        st.sampled_from(
            [
                "job",
                "url",
                "stage",
                "sha256",
                "template_id",
                "file",
                "bytes",
                "line",
                "output",
                "video_url",
                "duration_s",
                "message",
                "kind",
                "permanent",
            ]
        ),
        json_values,
        max_size=4,
    ),
)


@given(
    st.lists(st.one_of(ledger_events.map(dumps), st.text(max_size=20)), max_size=8),
    st.booleans(),
)
@example(['{"e": "template"}'], True)
@example(['{"e": "uploaded", "row": "r"}'], True)
def test_ledger_lines_replay_or_fail_located(lines: list[str], newline_at_end: bool) -> None:
    text = "\n".join(lines) + ("\n" if newline_at_end else "")
    path = _write(".jsonl", text.encode("utf-8", "surrogatepass"))
    try:
        state = replay(path)
    except RunDirError as exc:
        assert str(path) in str(exc)
    else:
        for row in state.rows.values():
            assert isinstance(row.row, str)
