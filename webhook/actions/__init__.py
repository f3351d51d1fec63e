"""What each command does, as a library: one module per command, spelled like its ``webhook.cli`` twin.

============== =============================================================================
dry_run.py     judge manifests as the API server would run the webhooks (``tenantguard dry-run``)
policy_test.py PolicyTest suites: load, run, compare (``tenantguard test``; the golden suites)
render.py      native Namespace/ResourceQuota/LimitRange/NetworkPolicy objects (``tenantguard render``)
audit.py       live pods judged as they are, and drift (``tenantguard audit``)
lint.py        findings about policy files beyond their schema (``tenantguard lint``)
certs.py       CA and serving certificates (``tenantguard certs``; the throwaway pair of ``serve``)
============== =============================================================================

Modules here take and return values (policy sets, views, results) and raise
``TenantguardError``; they never parse arguments or print. ``webhook.cli`` does that.
"""
