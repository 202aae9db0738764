"""Which 64-bit digests were seen, and on which line first: validate's duplicate finder.

Two open-addressing tables of 64-bit string hashes in flat arrays (12 bytes a slot), about 50 MB
for a million rows where Python sets of ints would take ~160. See :mod:`.validate`.
"""

from __future__ import annotations

from array import array

_INITIAL_SLOTS = 1 << 12


def digest64(text: str) -> int:
    """A 64-bit digest for this process only: Python's own (SipHash) string hash, made unsigned.

    It is salted per process, which is fine: the tables live for one scan and are never stored.
    """
    return hash(text) & 0xFFFF_FFFF_FFFF_FFFF


class SeenDigests:
    """A set of 64-bit digests remembering the line each was first seen on, in flat arrays."""

    def __init__(self) -> None:
        self._keys = array("Q", bytes(8 * _INITIAL_SLOTS))
        self._lines = array("I", bytes(4 * _INITIAL_SLOTS))
        self._count = 0

    def add(self, digest: int, line: int) -> int | None:
        """Record ``digest`` at ``line``; the earlier line when it was already there."""
        digest = digest or 1  # 0 marks an empty slot
        keys = self._keys
        mask = len(keys) - 1
        slot = digest & mask
        while (key := keys[slot]) != 0:
            if key == digest:
                return self._lines[slot]
            slot = (slot + 1) & mask
        keys[slot] = digest
        self._lines[slot] = min(line, 0xFFFFFFFF)
        self._count += 1
        if self._count * 2 > len(keys):
            self._grow()
        return None

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        self._keys = array("Q", bytes(16 * len(old_keys)))
        self._lines = array("I", bytes(8 * len(old_keys)))
        mask = len(self._keys) - 1
        for key, line in zip(old_keys, old_lines, strict=True):
            if key:
                slot = key & mask
                while self._keys[slot] != 0:
                    slot = (slot + 1) & mask
                self._keys[slot] = key
                self._lines[slot] = line
