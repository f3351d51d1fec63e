"""Policy files: schema (pydantic), loading (YAML -> validated documents) and compiling (-> core plan)."""

from webhook.policy.loader import PolicyError, load_policies

__all__ = ["PolicyError", "load_policies"]
