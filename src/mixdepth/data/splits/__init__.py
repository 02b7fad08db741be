"""Split lists shipped with the package (plain text, '#' comment lines)."""

from __future__ import annotations

from importlib import resources


def read_split(name: str) -> list[str]:
    """Non-comment, non-empty lines of the shipped split list `name` (e.g. 'nyu_test.txt')."""
    text = resources.files(__package__).joinpath(name).read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
