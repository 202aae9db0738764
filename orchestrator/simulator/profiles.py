"""The simulator's profile names, importable without pydantic (``orchestrator --help`` lists
them; ``settings`` defines what each one sets)."""

from __future__ import annotations

from typing import Literal, get_args

ProfileName = Literal["demo", "realistic", "flaky", "test"]
PROFILE_NAMES: tuple[str, ...] = get_args(ProfileName)
