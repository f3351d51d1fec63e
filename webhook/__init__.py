"""tenantguard: a Kubernetes admission webhook enforcing per-tenant pod policies."""

__version__ = "0.1.0"
