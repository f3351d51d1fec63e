"""The Pod Security Standards, evaluated as Kubernetes' PodSecurity admission evaluates them.

PURE: standard library only. One call judges one pod (or pod template)::

    failures = evaluate("restricted", "latest", pod["metadata"], pod["spec"])
    if failures:
        print(format_failures("restricted", "latest", failures))
        # violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (...), ...

Levels: ``privileged`` (no checks), ``baseline``, ``restricted``. Versions:
``latest`` (the newest revision any check defines, :data:`NEWEST_VERSION`) or
``v1.N``; versions newer than the newest revision behave like it; malformed
strings raise ValueError. The checks, their ids, revisions and overrides are in
:mod:`webhook.core.pod_security.registry`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from webhook.core.pod_security._api import (
    LEVELS,
    parse_level,
    parse_level_version,
    parse_version,
    version_string,
)
from webhook.core.pod_security._helpers import prepare
from webhook.core.pod_security._model import CheckFailure
from webhook.core.pod_security.registry import CHECKS, NEWEST_VERSION, checks_for, plan

__all__ = [
    "CHECKS",
    "LEVELS",
    "NEWEST_VERSION",
    "CheckFailure",
    "checks_for",
    "evaluate",
    "format_failures",
    "parse_level_version",
]

_EMPTY: Mapping[str, Any] = {}
_SPEC = object()  # the memo's key of the prepared spec (check results are keyed by check function)


@lru_cache(maxsize=256)
def _resolve(level: str, version: str) -> tuple[str, int]:
    return parse_level(level), parse_version(version)


def evaluate(level: str, version: str, metadata: Mapping[str, Any] | None,
             spec: Mapping[str, Any] | None, memo: dict[Any, Any] | None = None) -> list[CheckFailure]:
    """Every check of ``level`` at ``version`` that forbids the pod, in upstream's order.

    ``metadata`` and ``spec`` are the pod's (or pod template's) ``metadata`` and
    ``spec`` as plain dicts. Raises ValueError for an unknown level or a malformed version.
    ``memo``: a dict kept across calls on the *same, unchanged* pod (e.g. a cluster
    policy at ``baseline`` and a tenant policy at ``restricted``): each check
    revision then runs once per pod.
    """
    checks = plan(*_resolve(level, version))
    if not checks:
        return []
    meta = metadata if isinstance(metadata, dict) else _EMPTY
    if memo is None:
        memo = {}
    pod_spec = memo.get(_SPEC)
    if pod_spec is None:
        pod_spec = memo[_SPEC] = prepare(spec if isinstance(spec, dict) else _EMPTY)
    failures: list[CheckFailure] = []
    for check_id, check_pod in checks:
        if check_pod in memo:
            found = memo[check_pod]
        else:
            found = memo[check_pod] = check_pod(meta, pod_spec)
        if found is not None:
            failures.append(CheckFailure(check_id, found.reason, found.detail, found.containers, found.fields,
                                         found.pod_level))
    return failures


def format_failures(level: str, version: str, failures: Iterable[CheckFailure]) -> str:
    """Upstream's denial message: ``violates PodSecurity "restricted:latest": reason (detail), ...``.

    Returns ``""`` when there is no failure.
    """
    parts = [f.message for f in failures]
    if not parts:
        return ""
    lv = f"{parse_level(level)}:{version_string(parse_version(version))}"
    return f'violates PodSecurity "{lv}": ' + ", ".join(parts)
