"""The one error tree of tenantguard.

Every error a user can cause, by input, flags or environment, is a :class:`TenantguardError`:
it carries the exit code of the command that meets it (``exit_code``), the HTTP status where
the server answers it (``http_status``), and the lines to print (:meth:`TenantguardError.lines`).
The CLI catches it once (``webhook.cli.main``); the server answers it in its fail posture.
Anything else that escapes is a bug (exit 1, traceback)::

    TenantguardError                  exit 2
    ├── ReviewError                   a malformed AdmissionReview (webhook.core.request): HTTP 400
    ├── QuantityError                 a quantity the API server would refuse (webhook.core.quantity)
    ├── StateError                    an object a cluster view cannot hold (webhook.core.cluster_state)
    ├── TenantConflict                a namespace claimed by several tenants (webhook.core.plan)
    ├── PolicyError                   invalid policy files, every error (webhook.policy.loader)
    ├── SuiteError                    an invalid PolicyTest suite (webhook.actions.policy_test)
    ├── InputError                    manifests that cannot be read (webhook.inputs.yamlio)
    ├── ClusterViewError              no cluster view: a bad --cluster-state, no kubeconfig (webhook.views)
    ├── ClusterReadError              the live cluster cannot be read (webhook.views.snapshot)
    ├── RenderError                   policies that make invalid native objects (webhook.actions.render)
    └── CertError                     certificates that cannot be made or read (webhook.actions.certs)

A policy *violation* is not an error: it is a finding in the Decision (allowed: false, HTTP 200).
A rule that crashes is not an error either: it is a finding with status ``error`` (see
webhook.core.decision), so an admission always gets an answer.
"""

from __future__ import annotations


class TenantguardError(Exception):
    """An error the user can act on: a message (or several lines), an exit code, an HTTP status."""

    exit_code: int = 2
    http_status: int = 400

    def lines(self) -> list[str]:
        """What to print on stderr, one line each (a PolicyError has one per problem)."""
        return [f"tenantguard: {line}" for line in (str(self).splitlines() or [type(self).__name__])]
