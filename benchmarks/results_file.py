"""Writing one benchmark's section of ``benchmarks/RESULTS.md`` (between its markers)."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(begin: str, end: str, lines: list[str]) -> str:
    """Replace (or append) the section between ``begin`` and ``end``; return it."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    section = "\n".join([begin, *lines, end])
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)
    return section
