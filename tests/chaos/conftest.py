"""Chaos-suite hooks: write and print the chaos matrix the fault tests fill in."""

from __future__ import annotations

from typing import Any

from chaos_support import ARTIFACTS, MATRIX, matrix_markdown


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Write ``artifacts/chaos-matrix.md`` and print it, if any fault test ran."""
    if not MATRIX:
        return
    text = matrix_markdown()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "chaos-matrix.md"
    path.write_text(text, "utf-8")
    terminalreporter.write_sep("=", f"chaos matrix (also in {path})")
    terminalreporter.write(text)
