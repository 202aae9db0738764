"""Installed as users install tools: `pipx install .` in a fresh virtual environment gives a
working `orchestrator`, under the distribution's name, with one version everywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import orchestrator
from orchestrator.config import Config

ROOT = Path(__file__).resolve().parent.parent
BUILT_FROM = ("pyproject.toml", "README.md", "orchestrator")
"""What a build reads (a copy, so the checkout gets no build/ folder)."""
INSTALL_TIMEOUT_S = 240


def test_one_name_and_one_version() -> None:
    """pyproject.toml names the distribution ``orchestrator.DISTRIBUTION`` and reads its version
    from ``orchestrator.__version__``; the User-Agent says both, with no placeholder URL."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == orchestrator.DISTRIBUTION
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "orchestrator.__version__"}
    user_agent = Config().api.user_agent
    assert user_agent == f"{orchestrator.DISTRIBUTION}/{orchestrator.__version__}"
    assert "http" not in user_agent


def _copy_sources(into: Path) -> Path:
    into.mkdir()
    for name in BUILT_FROM:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / name)
    return into


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_pipx_install_gives_a_working_orchestrator(tmp_path: Path) -> None:
    """In a fresh virtual environment, pipx (from PyPI) installs the project (not editable) into
    a venv of its own; its `orchestrator` prints the version, validates the sample manifest and
    renders the sample batch against the embedded simulator (the package data is in the wheel),
    from the installed copy, not the checkout."""
    started = time.monotonic()
    source = _copy_sources(tmp_path / "src")
    tools = tmp_path / "tools"
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
    python = tools / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "pipx"], check=True)
    env = {
        **os.environ,
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
    }
    installed = subprocess.run(
        [str(python), "-m", "pipx", "install", str(source)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    command = tmp_path / "bin" / "orchestrator"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(command), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    listed = subprocess.run(
        [str(python), "-m", "pipx", "list", "--short"], env=env, capture_output=True, text=True
    )
    assert f"{orchestrator.DISTRIBUTION} {orchestrator.__version__}" in listed.stdout
    version = run("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == (
        f"orchestrator {orchestrator.__version__} ({orchestrator.DISTRIBUTION})"
    )
    template = "jobs/welcome/welcome.pictai"
    valid = run("validate", "jobs/welcome/manifest.csv", "--template", template)
    assert valid.returncode == 0, valid.stderr
    out = tmp_path / "run"
    rendered = run(
        "run",
        "jobs/welcome/manifest.csv",
        *("--template", template, "--out", str(out), "--simulate=test"),
    )
    assert rendered.returncode == 0, rendered.stderr
    assert len(list((out / "videos").glob("*.mp4"))) == 25
    where = subprocess.run(
        [
            str(command.resolve().parent / "python"),
            "-c",
            "import orchestrator; print(orchestrator.__file__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert str(tmp_path / "pipx") in where.stdout, where.stdout + where.stderr
    print(f"pipx install and checks: {time.monotonic() - started:.1f} s")
