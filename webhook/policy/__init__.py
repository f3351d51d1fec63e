"""Policy documents: the schema of policy files and PolicyTest suites (pydantic: ``schema``, ``suite``),
loading YAML into validated documents with errors naming file, document and field (``loader``), and
compiling them into the core's plan (``compile``)."""

from webhook.policy.loader import PolicyError, load_policies

__all__ = ["PolicyError", "load_policies"]
