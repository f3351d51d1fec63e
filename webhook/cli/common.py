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


def load_cluster_policy_set(kubeconfig: str | None = None, context: str | None = None) -> PolicySet:
    """The TenantPolicy and ClusterPolicy objects of the cluster a kubeconfig names, loaded as the webhook
    loads them (``serve --policies-from cluster``); errors name each object (``TenantPolicy/x: field: ...``)."""
    from webhook.policy.resources import load_objects
    from webhook.views.policy_objects import read_policy_objects
    from webhook.views.snapshot import ClusterReadError, connect, why

    api = connect(kubeconfig=kubeconfig, context=context)
    try:
        objects = read_policy_objects(api)
    except Exception as exc:  # noqa: BLE001 - ApiException, connection errors: one line, exit 2
        hint = (" (are the tenantguard.io CRDs installed? `tenantguard schema --crd | kubectl apply -f -`)"
                if getattr(exc, "status", None) == 404 else "")
        raise ClusterReadError(f"cannot read the policies from the cluster: {why(exc)}{hint}") from exc
    finally:
        api.close()
    return load_objects(objects)


def load_policy_set(paths: Iterable[str]) -> PolicySet:
    """The policies of ``paths``; raises PolicyError with every error (file, document, field)."""
    return load_policies(paths)
