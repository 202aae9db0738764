"""``python -m benchmarks.replay_probe LEDGER``: replay a ledger (timed from outside)."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.ledger.file import replay


def main() -> int:
    state = replay(Path(sys.argv[1]))
    done = sum(1 for r in state.rows.values() if r.status == "done")
    print(f"{len(state.rows)} rows, {done} done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
