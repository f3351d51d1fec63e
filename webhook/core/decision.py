"""What the engine concludes about one object: allowed or not, why, and the patch.

Every rule the engine ran leaves a :class:`RuleResult` with one of five statuses, as
Kyverno's engine reports them:

=======  ======================================================================
pass     the rule judged the object and found nothing
fail     it found violations (they deny under Enforce, are recorded under Audit)
warn     it found violations in a Warn-mode policy (they become kubectl warnings)
error    it could not be evaluated: it raised, or met data it cannot read. Never a
         silent pass: under Enforce it denies with a message saying the rule failed
skip     it does not apply here (another kind, another subresource)
=======  ======================================================================

Each result carries how long the rule took (when the caller gave the engine a timer),
which feeds the ``tenantguard_rule_duration_seconds`` histogram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from webhook.core.patch import PatchOp


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    ERROR = "error"
    SKIP = "skip"


class RuleResult(NamedTuple):
    """One rule of one policy, run (or skipped) on one object (a plain tuple: one per rule per admission)."""

    policy: str
    rule: str
    status: Status
    seconds: float | None = None  # None when no timer was given
    findings: int = 0


class Violation(NamedTuple):
    """One broken rule, precise enough to act on (a plain tuple: rules make many, they never change).

    ``policy`` and ``rule`` say which policy and which rule; ``container`` and
    ``field`` say where (container is None for pod-level findings); ``actual`` and
    ``required`` give the numbers or values compared. ``check`` names the
    Pod Security Standards check for ``podSecurity`` findings.
    """

    policy: str
    rule: str
    message: str
    container: str | None = None
    field: str | None = None
    actual: Any = None
    required: Any = None
    check: str | None = None
    enforcement: str = "Enforce"
    status: Status = Status.FAIL  # ERROR: the rule could not be evaluated (the message says why)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy, "rule": self.rule, "message": self.message}
        for key in ("container", "field", "actual", "required", "check"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["enforcement"] = self.enforcement
        if self.status is Status.ERROR:
            out["status"] = self.status.value
        return out

    def summary(self) -> str:
        """One line for kubectl warnings, denial messages and reports; a Pod Security
        finding names its check: ``[baseline/podSecurity] hostNamespaces: host namespaces (...)``."""
        check = f"{self.check}: " if self.check else ""
        return f"[{self.policy}/{self.rule}] {check}{self.message}"


@dataclass(slots=True)
class Decision:
    """The outcome of one review.

    ``violations`` holds only what denies (Enforce mode). Warn-mode findings are
    in ``warned``; Audit-mode findings are in ``audit`` and surface as
    ``auditAnnotations``. ``notes`` are the mutation phase's own messages (a default
    not applied, Audit-mode "would set ..."); :attr:`warnings` derives the kubectl
    warnings from ``notes`` and ``warned``, once. ``results`` has one RuleResult per
    rule run. ``patch`` is empty when nothing changed. ``mutated`` is the object after
    the patch (None when the object was not evaluated, e.g. a DELETE).
    """

    allowed: bool = True
    tenant: str | None = None
    policies: tuple[str, ...] = ()
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warned: list[Violation] = field(default_factory=list)
    audit: list[Violation] = field(default_factory=list)
    results: list[RuleResult] = field(default_factory=list)
    patch: list[PatchOp] = field(default_factory=list)
    mutated: dict[str, Any] | None = None
    skipped: str | None = None  # why nothing was evaluated (exempt, not a pod kind, operation, ...)

    @property
    def warnings(self) -> list[str]:
        """What kubectl prints: the mutation phase's notes, then each Warn-mode finding."""
        if not self.warned:
            return self.notes
        return self.notes + [v.summary() for v in self.warned]

    @property
    def errors(self) -> list[Violation]:
        """Findings of rules that could not be evaluated, whatever their policy's mode."""
        return [v for v in (*self.violations, *self.warned, *self.audit) if v.status is Status.ERROR]

    def patch_json(self) -> list[dict[str, Any]]:
        return [op.as_json() for op in self.patch]

    def message(self) -> str:
        """The denial message: every violation, one per line after the first."""
        if not self.violations:
            return ""
        head = f"tenantguard denied the request ({len(self.violations)} violation{'s' if len(self.violations) != 1 else ''})"
        who = f" for tenant {self.tenant}" if self.tenant else ""
        return head + who + ":\n" + "\n".join("- " + v.summary() for v in self.violations)

    def audit_annotations(self) -> dict[str, str]:
        """auditAnnotations for Audit-mode findings (keys are prefixed by the API server with the webhook name)."""
        if not self.audit:
            return {}
        out = {
            "tenant": self.tenant or "",
            "policies": ",".join(sorted({v.policy for v in self.audit})),
            "rules": ",".join(sorted({f"{v.policy}/{v.rule}" for v in self.audit})),
            "violations": "; ".join(v.summary() for v in self.audit),
        }
        return out
