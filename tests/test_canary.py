"""The canary's choice of rows, and what the ledger records about it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from orchestrator.input.rows import manifest_rows
from orchestrator.ledger.file import FileLedger, replay
from orchestrator.run.canary import gate, read_record, select_rows


def _mixed_manifest(folder: Path) -> Path:
    for name in ("a", "b"):
        (folder / f"{name}.pictai").write_text(
            json.dumps({"scenes": [{"sentence": f"{name} {{{{name}}}}"}]})
        )
    (folder / "post.txt").write_text("A script.\n")
    manifest = folder / "m.csv"
    rows = [
        ["a1", "template", "a.pictai", "A1", ""],
        ["a2", "template", "a.pictai", "A2", ""],
        ["a3", "template", "a.pictai", "A3", ""],
        ["a4", "template", "a.pictai", "A4", ""],
        ["b1", "template", "b.pictai", "B1", ""],
        ["s1", "storyboard", "", "", "A script."],
        ["b2", "template", "b.pictai", "B2", ""],
    ]
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "flow", "template", "name", "text"])
        writer.writerows(rows)
    return manifest


def test_canary_rows_spread_over_templates_and_flows(tmp_path: Path) -> None:
    """The first row of each (flow, template) group comes first, then the second of each."""
    manifest = _mixed_manifest(tmp_path)
    assert select_rows(manifest_rows(manifest, None), 3) == ["a1", "b1", "s1"]
    assert select_rows(manifest_rows(manifest, None), 5) == ["a1", "b1", "s1", "a2", "b2"]
    assert len(select_rows(manifest_rows(manifest, None), 50)) == 7
    assert select_rows(manifest_rows(manifest, None), 2, lambda r: r == "a1") == ["a2", "b1"]


async def test_gate_records_the_canary_once_then_the_approval(tmp_path: Path) -> None:
    """A new canary is recorded before anything runs; later runs keep it, whatever N they give,
    until an approval is recorded; after it no row is held back."""
    manifest = _mixed_manifest(tmp_path)
    run_dir = tmp_path / "run"
    ledger = FileLedger.open(run_dir)

    async def run(size: int | None, approve: bool = False) -> frozenset[str] | None:
        return await gate(ledger, manifest_rows(manifest, None), size=size, approve=approve)

    try:
        first = await run(2)
        assert first == {"a1", "b1"}
        assert await run(5) == first
        assert await run(None) == first
        assert await run(None, approve=True) is None
        assert await run(2) is None
    finally:
        ledger.close()
    record = read_record(replay(run_dir / "ledger.jsonl"))
    assert record.rows == {"a1", "b1"} and record.approved and not record.waiting
    lines = (run_dir / "ledger.jsonl").read_text().splitlines()
    events = [json.loads(line)["e"] for line in lines]
    assert events == ["canary", "approved"]
