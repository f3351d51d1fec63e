"""The PolicyTest suite schema (docs/policy-tests.md), validated with pydantic v2.

A suite file holds one ``kind: PolicyTest`` document. As in policy files, unknown
fields are errors everywhere (``extra="forbid"``; ``metadata`` excepted, as there),
and :func:`webhook.policy.loader.error_lines` turns a ValidationError into lines
worded like the policy loader's::

    tests/x.yaml: document 1: spec.cases[2].expect.allowd: unknown field

Inline policies under ``spec.policies`` are validated here with the policy schema,
so their errors carry the same kind of path (``spec.policies[1].spec.rules.qosClass``).
Reading the files a suite names, and building requests, is webhook.actions.policy_test's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from webhook.policy import schema

KIND = "PolicyTest"

_YAML_TYPES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
               type(None): "null"}


def _described(value: Any) -> str:
    return _YAML_TYPES.get(type(value), type(value).__name__)


class SuiteModel(schema.Model):
    """Unknown fields forbidden (``schema.Model``); a non-mapping is ``must be a mapping (got a string)``."""

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if not isinstance(value, (dict, SuiteModel)):
            raise ValueError(f"must be a mapping (got {_described(value)})")  # noqa: TRY004 (pydantic)
        return value


def _to_text(value: Any) -> Any:
    # YAML reads `name: 2024` or `tenant: 42` as a number; names are strings.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_to_text)]


def _null_as_empty(value: Any) -> Any:
    # `before:` with nothing after it is YAML null: the same as an empty list.
    return [] if value is None else value


def _path_or_object(value: Any) -> Any:
    if not isinstance(value, (str, dict)):
        raise ValueError(f"must be a path or an object (got {_described(value)})")  # noqa: TRY004 (pydantic)
    return value


ObjectEntry = Annotated[str | dict[str, Any], BeforeValidator(_path_or_object)]
"""A path (a manifest file or directory, relative to the suite file) or an inline Kubernetes object."""

ObjectList = Annotated[list[ObjectEntry], BeforeValidator(_null_as_empty)]

class _PolicyKind(schema.Model):
    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: Literal["ClusterPolicy", "TenantPolicy"]


def _path_or_policy(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise ValueError(  # noqa: TRY004 (pydantic)
            f"must be a path or an inline policy (got {_described(value)})")
    kind = value.get("kind")
    model = schema.POLICY_KINDS.get(kind) if isinstance(kind, str) else None
    # A ValidationError raised here keeps its field paths, below this entry's: spec.policies[1].spec...
    if model is None:
        _PolicyKind.model_validate(value)  # kind missing or unknown: `kind: must be one of ...`
    else:
        model.model_validate(value)
    return value  # the raw document: the policy loader compiles it and names it in cross-file errors


PolicyEntry = Annotated[str | dict[str, Any], BeforeValidator(_path_or_policy)]
"""A path (a policy file or directory, relative to the suite file) or an inline ClusterPolicy/TenantPolicy."""


class SuiteMetadata(SuiteModel):
    """``metadata``: only ``name`` is read; other fields (labels, ...) are ignored, as in policy files."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: Text | None = Field(
        default=None, description="The suite's name; default: the file name without suffix.")


class ExpectedViolation(SuiteModel):
    """One entry of ``expect.violations`` (or of its ``contains``): every field given must equal the actual
    violation's; ``count`` says how many violations the entry stands for."""

    policy: Text | None = Field(default=None, description="The policy's metadata.name.")
    rule: Text | None = Field(default=None, description="The rule, e.g. requireLimits, podSecurity, quota.")
    check: Text | None = Field(default=None, description="The Pod Security check, e.g. hostNamespaces.")
    container: Text | None = Field(default=None, description="The container's name.")
    field: Text | None = Field(default=None, description="The field path the violation is about.")
    message: Text | None = Field(default=None, description="The exact message.")
    messageContains: Text | None = Field(default=None, description="A substring of the message.")
    enforcement: Literal["Enforce", "Warn", "Audit"] | None = Field(
        default=None, description="The policy's enforcement mode.")
    actual: Any = Field(default=None, description="The offending value (any YAML value).")
    required: Any = Field(default=None, description="What the rule requires (any YAML value).")
    count: Annotated[int, Strict(), Field(ge=0)] | None = Field(
        default=None,
        description="Exactly this many actual violations match the entry (0: none); default: at least one.")


class PatchOperation(SuiteModel):
    """One RFC 6902 operation of ``expect.patch`` (every field compared, as given) or of a ``contains``
    list (``value`` and ``from`` compared only when given)."""

    op: Literal["add", "remove", "replace", "move", "copy", "test"] = Field(description="The operation.")
    path: str = Field(description="A JSON pointer, e.g. /spec/containers/0/resources.")
    value: Any = Field(default=None, description="The value (add, replace, test).")
    from_: str | None = Field(default=None, alias="from", description="The source pointer (move, copy).")


class ViolationsContains(SuiteModel):
    """``expect.violations: {contains: [...]}``: each entry matches some actual violation (with ``count``:
    exactly that many), on its own; other violations may exist."""

    contains: Annotated[list[ExpectedViolation], BeforeValidator(_null_as_empty)] = Field(
        description="The violations that must be among the actual ones; not empty.")

    @field_validator("contains")
    @classmethod
    def _some(cls, value: list[ExpectedViolation]) -> list[ExpectedViolation]:
        if not value:
            raise ValueError("must list at least one violation")
        return value


class PatchContains(SuiteModel):
    """``expect.patch: {contains: [...]}``: each operation must be in the patch; others may be."""

    contains: Annotated[list[PatchOperation], BeforeValidator(_null_as_empty)] = Field(
        description="The operations that must be in the patch; not empty.")

    @field_validator("contains")
    @classmethod
    def _some(cls, value: list[PatchOperation]) -> list[PatchOperation]:
        if not value:
            raise ValueError("must list at least one operation")
        return value


def _form(value: Any) -> str:
    """Which form of ``expect.violations``/``expect.patch`` a value is: ``{contains: [...]}`` or a list (exact).

    The tags look like pydantic's own type tags (``list[...]``), which error paths leave out:
    ``spec.cases[0].expect.violations[1].rul``, ``spec.cases[0].expect.patch.contains[0].op``.
    """
    return "contains[partial]" if isinstance(value, (dict, SuiteModel)) else "list[exact]"


def _null_or_list_or_mapping(value: Any) -> Any:
    if value is None:
        return []
    if not isinstance(value, (list, dict, SuiteModel)):
        raise ValueError(  # noqa: TRY004 (pydantic)
            f"must be a list or a mapping {{contains: [...]}} (got {_described(value)})")
    return value


ExpectedViolations = Annotated[
    Annotated[list[ExpectedViolation], Tag("list[exact]")] | Annotated[ViolationsContains, Tag("contains[partial]")],
    Discriminator(_form), BeforeValidator(_null_or_list_or_mapping)]
"""``expect.violations``: the exact list, or ``{contains: [...]}``."""

ExpectedPatch = Annotated[
    Annotated[list[PatchOperation], Tag("list[exact]")] | Annotated[PatchContains, Tag("contains[partial]")],
    Discriminator(_form), BeforeValidator(_null_or_list_or_mapping)]
"""``expect.patch``: the exact patch, or ``{contains: [...]}``."""


class Expectation(SuiteModel):
    """``expect``: what the decision must be. Only the fields given are compared; at least one is required."""

    allowed: bool | None = Field(default=None, description="Whether the request is admitted (true or false).")
    violations: ExpectedViolations = Field(
        default=[], description="A list: each entry matches distinct actual violations and none is left over; "
                                "{contains: [...]}: each entry matches some actual violation, others may exist.")
    findings: ExpectedViolations = Field(
        default=[], description="Like violations, over every finding: Enforce (denies), Warn (warns) and Audit "
                                "(audit annotations), each with its enforcement, as dry-run -o json lists them.")
    patch: ExpectedPatch = Field(
        default=[], description="A list: the exact patch, in any order ([] means no patch); "
                                "{contains: [...]}: operations that must each be in the patch.")
    patchContains: Annotated[list[PatchOperation], BeforeValidator(_null_as_empty)] = Field(
        default=[], description="The same as patch: {contains: [...]}.")
    warnings: Annotated[list[Text], BeforeValidator(_null_as_empty)] = Field(
        default=[], description="Each must be a substring of some warning; [] means no warnings.")
    tenant: Text | None = Field(default=None, description="The resolved tenant's name; null for none.")

    @field_validator("allowed", mode="before")
    @classmethod
    def _allowed_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must be true or false")
        return value

    @model_validator(mode="after")
    def _expects_something(self) -> Expectation:
        if not self.model_fields_set:
            raise ValueError("must set at least one of " + ", ".join(type(self).model_fields))
        return self

    def as_mapping(self) -> dict[str, Any]:
        """The fields given, nested ones too, as plain data (``from`` spelled as in RFC 6902)."""
        return self.model_dump(exclude_unset=True, by_alias=True)


class UserInfo(SuiteModel):
    """``user``: who sends the request."""

    username: Text = Field(default="", description="The user's name ('' for none).")
    groups: Annotated[list[str], BeforeValidator(_null_as_empty)] = Field(
        default=[], description="The user's groups.")


class CaseSpec(SuiteModel):
    """One entry of ``spec.cases``: a request and what its decision must be.

    When the object is an AdmissionReview, its request is taken whole: ``namespace``,
    ``operation``, ``subresource``, ``user``, ``oldObject`` and ``dryRun`` are not read.
    """

    name: Text | None = Field(
        default=None, description="The case's name in reports; default: `case N` (1-based).")
    namespace: Text | None = Field(
        default=None, description="The request's namespace; default: the object's, else spec.namespace.")
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"] = Field(
        default="CREATE", description="The admission operation.")
    subresource: str = Field(
        default="", description="e.g. ephemeralcontainers or resize; '' for the object itself.")
    user: UserInfo | None = Field(
        default=None, description="Who sends the request; default: no username, no groups.")
    object: dict[str, Any] | None = Field(
        default=None, description="A Kubernetes object, or an AdmissionReview that is the whole request.")
    file: str | None = Field(
        default=None,
        description="Instead of `object`: a manifest file (relative to the suite file); its first document.")
    oldObject: dict[str, Any] | None = Field(default=None, description="The object before an UPDATE.")
    before: ObjectList = Field(
        default=[], description="Objects admitted first, in the same case (they count toward quota).")
    expect: Expectation = Field(description="What the decision must be.")
    dryRun: bool = Field(default=False, description="The request is a dry run (kubectl --dry-run=server).")

    @model_validator(mode="after")
    def _has_object(self) -> CaseSpec:
        if self.object is None and self.file is None:
            raise ValueError("needs `object` (a Kubernetes object or AdmissionReview) or `file`")
        return self


class SuiteSpec(SuiteModel):
    """``spec``: the policies, the cluster they run in, and the cases."""

    policies: list[PolicyEntry] = Field(
        description="Policy files/directories and/or inline policies; not empty.")
    clusterState: ObjectList = Field(
        default=[], description="Objects already in the cluster (Namespaces, Pods, ResourceQuotas, ...).")
    namespace: Text | None = Field(
        default=None, description="The cases' default namespace; default: `default`.")
    cases: list[CaseSpec] = Field(
        description="The cases, each run on a fresh copy of the cluster state; not empty.")

    @field_validator("policies")
    @classmethod
    def _some_policies(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("must list policy files/directories or inline policies")
        return value

    @field_validator("cases")
    @classmethod
    def _some_cases(cls, value: list[CaseSpec]) -> list[CaseSpec]:
        if not value:
            raise ValueError("must list at least one case")
        return value


class PolicyTestDoc(SuiteModel):
    """A suite file's one document."""

    apiVersion: Literal["tenantguard.io/v1alpha1"] = Field(
        default="tenantguard.io/v1alpha1", description="The schema version.")
    kind: Literal["PolicyTest"] = Field(description="Always PolicyTest.")
    metadata: SuiteMetadata | None = Field(default=None, description="The suite's name.")
    spec: SuiteSpec = Field(description="The suite.")
