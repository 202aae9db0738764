"""The README's module map names every module, so a reader finds any behaviour from it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_module_map_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("- Module map:")
    end = readme.find("\n- ", start + 1)
    named = set(re.findall(r"`([a-z0-9_/*]+)`", readme[start : end if end > 0 else None]))
    modules = {p.stem for p in (ROOT / "orchestrator").glob("*.py") if not p.stem.startswith("__")}
    packages = {
        f"{p.name}/"
        for p in (ROOT / "orchestrator").iterdir()
        if (p / "__init__.py").exists() and p.name != "stages"
    }
    missing = sorted((modules | packages) - named)
    assert not missing, f"add these to the README's module map: {missing}"
    assert "stages/*" in named
