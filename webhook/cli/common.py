"""What every subcommand module shares: exit codes, flag errors, and the policy flags' loading.

Subcommands raise :class:`webhook.core.errors.TenantguardError` for anything the user can fix;
``webhook.cli.main`` prints it and exits with its code, once, for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from webhook.core.errors import TenantguardError
from webhook.core.plan import PolicySet
from webhook.policy import load_policies

EXIT_OK, EXIT_DENIED, EXIT_ERROR = 0, 1, 2


class UsageError(TenantguardError):
    """Flags that do not go together, or values a flag cannot take (exit 2)."""


def load_policy_set(paths: Iterable[str]) -> PolicySet:
    """The policies of ``paths``; raises PolicyError with every error (file, document, field)."""
    return load_policies(paths)
