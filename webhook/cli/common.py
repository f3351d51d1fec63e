"""Pieces every subcommand shares: failing with exit code 2, loading policies and cluster state."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import NoReturn

from webhook.core.cluster_state import InMemoryClusterState, StateError
from webhook.core.plan import PolicySet
from webhook.manifests import read_objects
from webhook.policy import PolicyError, load_policies
from webhook.yamlio import InputError

EXIT_OK, EXIT_DENIED, EXIT_ERROR = 0, 1, 2


def fail(message: str) -> int:
    print(f"tenantguard: {message}", file=sys.stderr)
    return EXIT_ERROR


def die(message: str) -> NoReturn:
    fail(message)
    raise SystemExit(EXIT_ERROR)


def load_policy_set(paths: Iterable[str]) -> PolicySet:
    """Load policies or exit 2 with every error (file, document, field) on stderr."""
    try:
        return load_policies(paths)
    except PolicyError as exc:
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from None


def load_state(paths: Iterable[str]) -> InMemoryClusterState:
    """A cluster view from YAML streams of Pods, Namespaces, ResourceQuotas and NetworkPolicies."""
    state = InMemoryClusterState()
    paths = list(paths)
    if not paths:
        return state
    try:
        objects = read_objects(paths)
    except InputError as exc:
        die(f"--cluster-state: {exc}")
    for item in objects:
        try:
            state.add_object(item.obj)
        except StateError as exc:
            die(f"--cluster-state: {item.source}: document {item.document}: {exc}")
    return state
