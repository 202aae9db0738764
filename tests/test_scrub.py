"""Secret masking in everything a sink writes: real secrets are masked; a value too short to be
a secret (one character, say) is not, or it would blot that letter out of every line."""

from __future__ import annotations

from orchestrator.events import scrub


def test_secrets_of_eight_or_more_characters_are_masked() -> None:
    assert scrub("token=abcdefgh!", ["abcdefgh"]) == "token=***!"


def test_a_one_character_secret_masks_nothing() -> None:
    assert scrub("a row of data", ["a", "", "seven77"]) == "a row of data"
