"""Micro-benchmark session guard: say which ``glide._native`` is measured, refuse to time a debug build.

The release profile strips the library, so a ``.debug_info`` section means ``maturin develop`` without
``--release`` (or the ``profiling`` profile): timings of such a build say nothing about glide. The header
line says which build it is; ``--benchmark-only`` (a run made to measure) refuses an unstripped one. Plain
and ``--benchmark-disable`` runs (correctness) accept any build.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ALLOW_ENV = "GLIDE_BENCH_ALLOW_UNSTRIPPED"


def _elf_section_names(blob: bytes) -> set[str] | None:
    """Section names of a 64-bit little-endian ELF file (None for anything else: the check is then skipped).

    Looking for the name in the raw bytes would not do: std's symbolizer embeds ``.debug_info`` as a string.
    """
    if blob[:6] != b"\x7fELF\x02\x01" or len(blob) < 64:
        return None
    shoff = int.from_bytes(blob[0x28:0x30], "little")
    entsize = int.from_bytes(blob[0x3A:0x3C], "little")
    count = int.from_bytes(blob[0x3C:0x3E], "little")
    strndx = int.from_bytes(blob[0x3E:0x40], "little")

    def header(index: int) -> tuple[int, int, int]:
        at = shoff + index * entsize
        name = int.from_bytes(blob[at : at + 4], "little")
        offset = int.from_bytes(blob[at + 0x18 : at + 0x20], "little")
        size = int.from_bytes(blob[at + 0x20 : at + 0x28], "little")
        return name, offset, size

    if count == 0 or strndx >= count or shoff + count * entsize > len(blob):
        return None
    _, str_offset, str_size = header(strndx)
    table = blob[str_offset : str_offset + str_size]
    names = set()
    for index in range(count):
        start = header(index)[0]
        end = table.find(b"\0", start)
        names.add(table[start:end].decode("ascii", "replace"))
    return names


def _native_build() -> tuple[str, bool]:
    """The extension's path and whether it carries debug info."""
    from glide import _native

    path = Path(_native.__file__ or "")
    names = _elf_section_names(path.read_bytes())
    return str(path), names is not None and ".debug_info" in names


def pytest_report_header(config: pytest.Config) -> str:
    path, unstripped = _native_build()
    kind = "UNSTRIPPED (debug or profiling build)" if unstripped else "stripped release build"
    return f"glide._native: {path} ({kind})"


def pytest_configure(config: pytest.Config) -> None:
    measuring = bool(config.getoption("benchmark_only", default=False))
    if not measuring or os.environ.get(ALLOW_ENV) == "1":
        return
    path, unstripped = _native_build()
    if unstripped:
        raise pytest.UsageError(
            f"{path} carries debug info: timing it would measure a debug build. Build with "
            f"`pip install .` or `maturin develop --release`, run with --benchmark-disable, or set {ALLOW_ENV}=1."
        )
