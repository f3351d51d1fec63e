"""The ``status`` of a TenantPolicy or ClusterPolicy object, as the elected replica writes it.

The models are the CRDs' status schema too (webhook.policy.crd), so what is written is what
``kubectl explain tenantpolicy.status`` documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

READY = "Ready"
# reasons of the Ready condition
LOADED = "Loaded"  # this generation is what the webhook enforces
INVALID = "Invalid"  # this generation has errors; the webhook enforces the last good set
BLOCKED = "Blocked"  # valid, but another policy's error keeps the whole set from loading


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Condition(_Model):
    """One condition of the policy (metav1.Condition)."""

    type: str
    """The condition: Ready."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str
    """Loaded (this generation is enforced), Invalid (it has errors: message names the field) or Blocked
    (it is valid, but another policy's error keeps the set from loading)."""
    message: str = ""
    """What the reason means here: the errors, each with its field path, or the policy set enforced."""
    lastTransitionTime: datetime
    """When status last changed."""
    observedGeneration: int | None = Field(default=None, ge=0)
    """The metadata.generation this condition is about."""


class AuditCounts(_Model):
    """What the last background audit found for this policy (live pods, judged as they are)."""

    pods: int = Field(ge=0)
    """Live pods the policy applies to."""
    denied: int = Field(ge=0)
    """Of those, pods this policy would deny if they were created now."""
    drift: int = Field(ge=0)
    """Of those, pods without a default this policy would set (created while the mutating webhook was down,
    or before the default was added)."""
    since: datetime
    """When an audit first found these counts (later audits that find the same write nothing)."""


class PolicyStatus(_Model):
    """What the tenantguard webhook made of this policy."""

    observedGeneration: int | None = Field(default=None, ge=0)
    """The metadata.generation the webhook last read."""
    conditions: list[Condition] = []
    """Ready: whether the webhook enforces this generation."""
    audit: AuditCounts | None = None
    """The counts of the last background audit (when the chart enables it)."""
