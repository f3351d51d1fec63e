"""Levels and policy versions, parsed the way the PodSecurity admission library parses them.

A version is ``latest`` or ``v1.N`` (``^v1\\.(0|[1-9][0-9]*)$``; ``v1.01`` and
``1.25`` are malformed). It is kept as its minor number; ``latest`` is
:data:`LATEST`, which sorts above every real version. Evaluating a version newer
than the newest check revision behaves like that newest revision, exactly as
the upstream evaluator clamps it (``maxVersion``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

PRIVILEGED = "privileged"
BASELINE = "baseline"
RESTRICTED = "restricted"
LEVELS: tuple[str, ...] = (PRIVILEGED, BASELINE, RESTRICTED)

LATEST = 1 << 30  # the minor number standing for "latest": newer than any real version

_VERSION_RE = re.compile(r"v1\.(0|[1-9][0-9]*)")


def parse_level(level: Any) -> str:
    """Validate a level name (case-sensitive, like the namespace labels)."""
    if not isinstance(level, str) or level not in LEVELS:
        raise ValueError(f"invalid Pod Security level {level!r}: must be one of {', '.join(LEVELS)}")
    return level


@lru_cache(maxsize=256)
def parse_version(version: str) -> int:
    """``latest`` -> :data:`LATEST`; ``v1.N`` -> N. Anything else raises ValueError."""
    if not isinstance(version, str):
        raise ValueError(f"invalid Pod Security version {version!r}: must be \"latest\" or \"v1.x\"")  # noqa: TRY004
    if version == "latest":
        return LATEST
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise ValueError(f"invalid Pod Security version {version!r}: must be \"latest\" or \"v1.x\"")
    return int(match.group(1))


def version_string(minor: int) -> str:
    return "latest" if minor >= LATEST else f"v1.{minor}"


def parse_level_version(value: Any) -> tuple[str, str]:
    """Accept ``"restricted"``, ``"restricted:v1.25"`` or ``{"level": ..., "version": ...}``.

    Returns ``(level, version)`` with the version normalised to ``latest`` or
    ``v1.N`` (a missing version means ``latest``). Raises ValueError otherwise.
    """
    level: Any
    version: Any
    if isinstance(value, str):
        level, sep, version = value.partition(":")
        if not sep:
            version = "latest"
    elif isinstance(value, dict):
        unknown = set(value) - {"level", "version"}
        if unknown:
            raise ValueError(f"unknown podSecurity field(s): {', '.join(sorted(map(str, unknown)))}")
        level = value.get("level")
        version = value.get("version", "latest")
        if version is None:
            version = "latest"
    else:
        raise ValueError("podSecurity must be a level name or a mapping with level and version")  # noqa: TRY004
    return parse_level(level), version_string(parse_version(version))
