"""Reads py-spy's raw (collapsed) stacks and says where a process's time goes.

Each line of the file is `frame;frame;...;frame count`, root first, and each frame
is `function (file:line)`. Start-up and shut-down samples are left out, so what
remains is the cost of serving calls.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")

# A stack with one of these frames is start-up or shut-down, not serving.
_NOT_SERVING = ("_find_and_load", "build_gateway", "GatewayApp.stop", "GatewayApp.start")

# (substring of the file path, category), first match wins.
_CATEGORIES = (
    ("grpc/_cython", "grpc (cython)"),
    ("grpc/aio", "grpc.aio (python)"),
    ("grpc/", "grpc (python)"),
    ("google/protobuf", "protobuf"),
    ("logging/", "logging"),
    ("json/", "json"),
    ("asyncio/", "asyncio"),
    ("jsonschema", "jsonschema"),
    ("referencing", "jsonschema"),
    ("rpds", "jsonschema"),
    ("pydantic", "pydantic"),
    ("sqlalchemy", "sqlalchemy"),
    ("uuid.py", "uuid"),
    ("dataclasses.py", "dataclasses"),
    ("gateway/", "gateway (own code)"),
    ("domains/", "domains sdk"),
    ("federation/", "generated stubs"),
)


def _key(frame: str) -> tuple[str, str]:
    """(function, file) of a frame; the line number is dropped to group by function."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


def category_of(file: str) -> str:
    """The library or layer a source file belongs to."""
    for needle, name in _CATEGORIES:
        if needle in file:
            return name
    return "native" if not file else "other (stdlib, site-packages)"


def _short(file: str) -> str:
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


@dataclass
class Profile:
    """Aggregated samples of one process."""

    samples: int = 0
    skipped: int = 0
    self_time: Counter[tuple[str, str]] = field(default_factory=Counter)
    inclusive: Counter[tuple[str, str]] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)

    def label(self, key: tuple[str, str]) -> str:
        """`function (file)` for printing."""
        function, file = key
        return f"{function} ({_short(file)})" if file else function


def read(path: Path) -> Profile:
    """Aggregates a py-spy raw file."""
    profile = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_key(f) for f in stack.split(";")]
        if any(f[0].endswith(_NOT_SERVING) for f in frames):
            profile.skipped += count
            continue
        profile.samples += count
        profile.self_time[frames[-1]] += count
        profile.categories[category_of(frames[-1][1])] += count
        for key in set(frames):
            profile.inclusive[key] += count
    return profile
