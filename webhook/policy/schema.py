"""The policy file schema (kinds TenantPolicy and ClusterPolicy), validated with pydantic v2.

Unknown fields are errors everywhere (``extra="forbid"``), so a typo like
``spec.defualts`` is reported instead of silently ignored. Quantities are
checked with the core's Kubernetes-exact parser and kept as strings.

Label keys and values, annotation keys and the total size of annotations are checked
with the API server's own rules (apimachinery ``IsQualifiedName``, ``IsValidLabelValue``,
``ValidateAnnotations``), with its messages, wherever a policy names them: a key the API
server would refuse is a load error, not a patch every pod creation then fails on.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from webhook.core.cel.kinds import KINDS as CEL_KINDS
from webhook.core.pod_security import LEVELS, parse_level_version
from webhook.core.quantity import QuantityError, parse_quantity
from webhook.core.selectors import is_glob
from webhook.core.workloads import builtin_group, template_prefix
from webhook.policy.spelling import quantity_hint

API_VERSION = "tenantguard.io/v1alpha1"
# Names are matched whole (``fullmatch``, or ``\Z``), as Go's ``^...$`` matches: Python's ``$`` lets "name\n" through.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9*?\[\]\-!]+$")
QUOTA_KEY = re.compile(
    r"^(pods|count/pods|cpu|memory|ephemeral-storage|"
    r"(requests|limits)\.(cpu|memory|ephemeral-storage)|"
    r"requests\.hugepages-[A-Za-z0-9]+|limits\.hugepages-[A-Za-z0-9]+|hugepages-[A-Za-z0-9]+|"
    r"requests\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$"
)
RESOURCE_NAME = re.compile(
    r"^(cpu|memory|ephemeral-storage|hugepages-[A-Za-z0-9]+|"
    r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$"
)


# A Kubernetes quantity as the API server parses it (quantity.go): a signed decimal number, then a binary
# suffix, a decimal suffix or a decimal exponent; surrounding blanks are trimmed.
QUANTITY_PATTERN = (r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
                    r"(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?\s*$")
POD_SECURITY_PATTERN = rf"^({'|'.join(LEVELS)})(:(latest|v1\.(0|[1-9][0-9]*)))?$"


class Model(BaseModel):
    # Field docstrings are the field descriptions of the editor schema and of the CRDs (kubectl explain):
    # they are written for policy authors.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, use_attribute_docstrings=True)


def _quantity(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError("must be a quantity such as 500m, 2 or 1Gi, not a boolean")  # noqa: TRY004 (pydantic)
    try:
        parse_quantity(value)
    except (QuantityError, TypeError) as exc:
        detail = str(exc).removeprefix(f"{value!r}: ")  # the parser names the value too: once is enough
        raise ValueError(f"invalid quantity {value!r}: {detail}{quantity_hint(value)}") from None
    return str(value)


# What a file may hold where the model keeps a string (the JSON schema input type of the before-validators).
QuantityInput = Annotated[Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)] | float,
                          Field(description="A Kubernetes quantity: 500m, 2, 1.5, 128Mi, 1Gi.")]
Quantity = Annotated[str, BeforeValidator(_quantity, json_schema_input_type=QuantityInput)]


def _resource_name(value: Any) -> str:
    if not isinstance(value, str) or not RESOURCE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a resource name (cpu, memory, ephemeral-storage, hugepages-<size>, "
                         "or a domain-prefixed extended resource such as nvidia.com/gpu)")
    return value


ResourceName = Annotated[str, BeforeValidator(
    _resource_name, json_schema_input_type=Annotated[str, StringConstraints(pattern=RESOURCE_NAME.pattern)])]


def _quota_key(value: Any) -> str:
    if not isinstance(value, str) or not QUOTA_KEY.fullmatch(value):
        raise ValueError(f"{value!r} is not a ResourceQuota key (requests.cpu, limits.memory, cpu, memory, pods, "
                         "requests.nvidia.com/gpu, ...)")
    return value


QuotaKey = Annotated[str, BeforeValidator(
    _quota_key, json_schema_input_type=Annotated[str, StringConstraints(pattern=QUOTA_KEY.pattern)])]


def _namespace_pattern(value: Any) -> str:
    if not isinstance(value, str) or not value or not NAMESPACE_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} is not a namespace name or shell glob")
    return value


NamespacePattern = Annotated[str, BeforeValidator(
    _namespace_pattern, json_schema_input_type=Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN.pattern)])]


def _to_str(value: Any) -> Any:
    # YAML turns `true`, `1` and `1.0` into non-strings; label and selector values are strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


# --- label and annotation keys and values: k8s.io/apimachinery/pkg/util/validation, messages included ---

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                       "alphanumeric character")
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                          "'.', and must start and end with an alphanumeric character")
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024  # bytes, keys and values together


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery ``RegexError``, word for word (its double spaces included)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    return msg + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8"))  # Go's len() counts bytes


def dns1123_subdomain_errors(value: str) -> list[str]:
    """apimachinery ``IsDNS1123Subdomain``: the reasons ``value`` is not one (empty when it is)."""
    errors = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not DNS_SUBDOMAIN.fullmatch(value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def qualified_name_errors(value: str) -> list[str]:
    """apimachinery ``IsQualifiedName`` (label keys, annotation keys): an optional DNS-1123 subdomain
    prefix and ``/``, then a name part of at most 63 characters."""
    parts = value.split("/")
    errors: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {msg}" for msg in dns1123_subdomain_errors(prefix))
    else:
        return ["a qualified name " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                   "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errors.append(f"name part {_max_len_error(QUALIFIED_NAME_MAX_LENGTH)}")
    if not _QUALIFIED_NAME.fullmatch(name):
        errors.append("name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                  "123-abc"))
    return errors


def label_value_errors(value: str) -> list[str]:
    """apimachinery ``IsValidLabelValue``: empty, or at most 63 characters of the name-part alphabet."""
    errors = []
    if _byte_len(value) > LABEL_VALUE_MAX_LENGTH:
        errors.append(_max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE.fullmatch(value):
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _invalid(what: str, value: str, errors: list[str]) -> str:
    return f"invalid {what} {value!r}: {'; '.join(errors)}"


def _label_key(value: str, what: str = "label key") -> str:
    errors = qualified_name_errors(value)
    if errors:
        raise ValueError(_invalid(what, value, errors))
    return value


def _label_value(value: str) -> str:
    errors = label_value_errors(value)
    if errors:
        raise ValueError(_invalid("label value", value, errors))
    return value


def _annotation_key(value: str) -> str:
    # ValidateAnnotations: "the rule is QualifiedName except that case doesn't matter"
    errors = qualified_name_errors(value.lower())
    if errors:
        raise ValueError(_invalid("annotation key", value, errors))
    return value


def _annotations_size(value: dict[str, str]) -> dict[str, str]:
    total = sum(_byte_len(k) + _byte_len(v) for k, v in value.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        raise ValueError(f"annotations size {total} is larger than limit {TOTAL_ANNOTATION_SIZE_LIMIT} (keys and "
                         "values together may take at most 256 KiB)")
    return value


def _toleration_key(value: str) -> str:
    return value if value == "" else _label_key(value, "toleration key")  # ValidateTolerations: a label key


_GLOB_KEY_CHARS = re.compile(r"[-A-Za-z0-9_./*?\[\]!]*")


def _toleration_key_pattern(value: str) -> str:
    """An allowed toleration key: a label key, or a glob over label keys (``*``, ``example.com/*``)."""
    if not is_glob(value):
        return _toleration_key(value)
    if not _GLOB_KEY_CHARS.fullmatch(value):
        raise ValueError(f"invalid toleration key pattern {value!r}: a label key or a glob over label keys may "
                         "use only alphanumeric characters, '-', '_', '.', '/' and the glob characters '*', '?', "
                         "'[', ']' and '!'")
    return value


LabelKey = Annotated[str, AfterValidator(_label_key)]
ScalarInput = str | float | bool  # YAML reads `1`, `1.5` and `true` as numbers and booleans; they become strings
LabelValue = Annotated[str, BeforeValidator(_to_str, json_schema_input_type=ScalarInput), AfterValidator(_label_value)]
AnnotationKey = Annotated[str, AfterValidator(_annotation_key)]
AnnotationValue = Annotated[str, BeforeValidator(_to_str, json_schema_input_type=ScalarInput)]  # any string
Labels = dict[LabelKey, LabelValue]
Annotations = Annotated[dict[AnnotationKey, AnnotationValue], AfterValidator(_annotations_size)]


# --- Kubernetes shapes used in defaults and rules (the fields we read; unknown ones rejected) ---

class LabelSelectorRequirement(Model):
    """A label selector requirement: the label key, an operator and, for In and NotIn, the values."""

    key: LabelKey
    """The label key the requirement applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """In, NotIn (with values), Exists or DoesNotExist (without values)."""
    values: list[LabelValue] = []
    """The label values for In and NotIn."""

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelectorModel(Model):
    """A label selector: matchLabels and matchExpressions, all of them ANDed."""

    matchLabels: Labels = {}
    """Labels that must be present with these values."""
    matchExpressions: list[LabelSelectorRequirement] = []
    """Label selector requirements."""


class SeccompProfile(Model):
    """A seccomp or AppArmor profile, as in a Pod (kubectl explain pod.spec.securityContext.seccompProfile)."""

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"]
    localhostProfile: str | None = None


AppArmorProfile = SeccompProfile


class SELinuxOptions(Model):
    """SELinux labels, as in a Pod (kubectl explain pod.spec.securityContext.seLinuxOptions)."""

    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class Capabilities(Model):
    """Linux capabilities to add and drop, as in a container (kubectl explain
    pod.spec.containers.securityContext.capabilities)."""

    add: list[str] | None = None
    drop: list[str] | None = None


class WindowsOptions(Model):
    """Windows-specific settings, as in a Pod (kubectl explain pod.spec.securityContext.windowsOptions)."""

    gmsaCredentialSpecName: str | None = None
    gmsaCredentialSpec: str | None = None
    runAsUserName: str | None = None
    hostProcess: bool | None = None


class Sysctl(Model):
    """A namespaced sysctl, as in a Pod (kubectl explain pod.spec.securityContext.sysctls)."""

    name: str
    value: str


class ContainerSecurityContext(Model):
    """Container securityContext fields, as in a Pod (kubectl explain pod.spec.containers.securityContext)."""

    allowPrivilegeEscalation: bool | None = None
    appArmorProfile: AppArmorProfile | None = None
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    procMount: Literal["Default", "Unmasked"] | None = None
    readOnlyRootFilesystem: bool | None = None
    runAsGroup: int | None = None
    runAsNonRoot: bool | None = None
    runAsUser: int | None = None
    seLinuxOptions: SELinuxOptions | None = None
    seccompProfile: SeccompProfile | None = None
    windowsOptions: WindowsOptions | None = None


class PodSecurityContext(Model):
    """Pod securityContext fields, as in a Pod (kubectl explain pod.spec.securityContext)."""

    appArmorProfile: AppArmorProfile | None = None
    fsGroup: int | None = None
    fsGroupChangePolicy: Literal["OnRootMismatch", "Always"] | None = None
    runAsGroup: int | None = None
    runAsNonRoot: bool | None = None
    runAsUser: int | None = None
    seLinuxChangePolicy: str | None = None
    seLinuxOptions: SELinuxOptions | None = None
    seccompProfile: SeccompProfile | None = None
    supplementalGroups: list[int] | None = None
    supplementalGroupsPolicy: Literal["Merge", "Strict"] | None = None
    sysctls: list[Sysctl] | None = None
    windowsOptions: WindowsOptions | None = None


class SecurityContextDefaults(Model):
    """securityContext defaults: a pod part and a container part, or the string restricted."""

    preset: Literal["restricted"] | None = None
    """restricted: the fields that make a typical pod pass the restricted Pod Security Standard (seccomp
    RuntimeDefault, runAsNonRoot, allowPrivilegeEscalation false, capabilities drop ALL)."""
    pod: PodSecurityContext = PodSecurityContext()
    """Pod securityContext fields, each set only where the pod leaves it unset."""
    container: ContainerSecurityContext = ContainerSecurityContext()
    """Container securityContext fields, set in every container where it leaves them unset."""


def _security_preset(value: Any) -> Any:
    if isinstance(value, str):
        return {"preset": value}
    return value


class Toleration(Model):
    """A toleration, as in a Pod (kubectl explain pod.spec.tolerations)."""

    key: Annotated[str, AfterValidator(_toleration_key)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] | None = None
    tolerationSeconds: int | None = None

    @model_validator(mode="after")
    def _shape(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("operator Exists takes no value")
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration without key must use operator Exists")
        return self


class TolerationPattern(Model):
    """An allowed toleration: key may be a glob; fields left out match anything."""

    key: Annotated[str, AfterValidator(_toleration_key_pattern)] = "*"
    """A toleration key, or a glob over keys (nvidia.com/*); left out: any key."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal; left out: either."""
    value: LabelValue | None = None
    """The value an Equal toleration must have; left out: any."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """NoSchedule, PreferNoSchedule or NoExecute; left out: any."""


class Probe(Model):
    """A probe, as in a container (kubectl explain pod.spec.containers.livenessProbe): one handler (exec,
    httpGet, tcpSocket or grpc) and its timings."""

    exec: dict[str, Any] | None = None
    httpGet: dict[str, Any] | None = None
    tcpSocket: dict[str, Any] | None = None
    grpc: dict[str, Any] | None = None
    initialDelaySeconds: int | None = Field(default=None, ge=0)
    periodSeconds: int | None = Field(default=None, ge=1)
    timeoutSeconds: int | None = Field(default=None, ge=1)
    successThreshold: int | None = Field(default=None, ge=1)
    failureThreshold: int | None = Field(default=None, ge=1)
    terminationGracePeriodSeconds: int | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if getattr(self, h) is not None]
        if len(handlers) != 1:
            raise ValueError("a probe needs exactly one of exec, httpGet, tcpSocket, grpc")
        for h in ("httpGet", "tcpSocket", "grpc"):
            spec = getattr(self, h)
            if spec is not None and "port" not in spec:
                raise ValueError(f"{h} needs a port")
        return self


class ProbeDefaults(Model):
    """Probes for app containers that have none: a probe whose handler names a port is given only to the
    containers that declare that port."""

    liveness: Probe | None = None
    """The default livenessProbe, shaped as a container's (kubectl explain pod.spec.containers.livenessProbe)."""
    readiness: Probe | None = None
    """The default readinessProbe, shaped as a container's (kubectl explain pod.spec.containers.readinessProbe)."""
    startup: Probe | None = None
    """The default startupProbe, shaped as a container's (kubectl explain pod.spec.containers.startupProbe)."""


class ResourceDefaults(Model):
    """Container requests and limits, per resource, set only where the container has none."""

    requests: dict[ResourceName, Quantity] = {}
    """Default requests per resource (cpu: 100m, memory: 128Mi, ...)."""
    limits: dict[ResourceName, Quantity] = {}
    """Default limits per resource (cpu: 500m, memory: 512Mi, ...); a request left out copies the limit."""

    @model_validator(mode="after")
    def _request_within_limit(self) -> ResourceDefaults:
        for res, req in self.requests.items():
            lim = self.limits.get(res)
            if lim is not None and parse_quantity(req) > parse_quantity(lim):
                raise ValueError(f"requests.{res} {req} is above limits.{res} {lim}")
        return self


class NodeSelectorTerm(Model):
    matchExpressions: list[dict[str, Any]] = []
    matchFields: list[dict[str, Any]] = []


class Affinity(Model):
    """Affinity defaults, shaped as a Pod's spec.affinity (kubectl explain pod.spec.affinity)."""

    nodeAffinity: dict[str, Any] | None = None
    """Node affinity: the expressions of the one required nodeSelectorTerm are ANDed into every term of the
    pod; preferred terms are appended unless present."""
    podAffinity: dict[str, Any] | None = None
    """Pod affinity terms, appended unless present."""
    podAntiAffinity: dict[str, Any] | None = None
    """Pod anti-affinity terms, appended unless present."""

    @field_validator("nodeAffinity")
    @classmethod
    def _one_required_term(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if not value:
            return value
        unknown = set(value) - {"requiredDuringSchedulingIgnoredDuringExecution",
                                "preferredDuringSchedulingIgnoredDuringExecution"}
        if unknown:
            raise ValueError(f"unknown field {min(unknown)}")
        required = value.get("requiredDuringSchedulingIgnoredDuringExecution")
        if required is not None:
            terms = required.get("nodeSelectorTerms") if isinstance(required, dict) else None
            if not isinstance(terms, list) or len(terms) != 1:
                raise ValueError("a default required nodeAffinity must have exactly one nodeSelectorTerm: its "
                                 "expressions are ANDed into every term of the pod")
            NodeSelectorTerm.model_validate(terms[0])
        return value

    @field_validator("podAffinity", "podAntiAffinity")
    @classmethod
    def _known_pod_affinity_fields(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value:
            unknown = set(value) - {"requiredDuringSchedulingIgnoredDuringExecution",
                                    "preferredDuringSchedulingIgnoredDuringExecution"}
            if unknown:
                raise ValueError(f"unknown field {min(unknown)}")
        return value


class TopologySpreadConstraint(Model):
    """A topology spread constraint, as in a Pod (kubectl explain pod.spec.topologySpreadConstraints)."""

    maxSkew: int = Field(ge=1)
    topologyKey: LabelKey
    whenUnsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    labelSelector: LabelSelectorModel | None = None
    matchLabelKeys: list[LabelKey] | None = None
    minDomains: int | None = None
    nodeAffinityPolicy: Literal["Honor", "Ignore"] | None = None
    nodeTaintsPolicy: Literal["Honor", "Ignore"] | None = None


class Defaults(Model):
    """Mutations: what the webhook fills in where a pod leaves it out; what the pod sets is never changed."""

    labels: Labels = {}
    """Labels added to the pod where it does not set the key."""
    annotations: Annotations = {}
    """Annotations added to the pod where it does not set the key."""
    resources: ResourceDefaults | None = None
    """Container requests/limits, per resource, only where the container has none; a request left out copies
    the limit."""
    probes: ProbeDefaults | None = None
    """Probes for app containers that declare the probe's port (or when the probe has no port)."""
    securityContext: Annotated[SecurityContextDefaults | None, BeforeValidator(
        _security_preset, json_schema_input_type=Literal["restricted"] | SecurityContextDefaults | None)] = None
    """Pod and container securityContext fields, set only where unset; or the string restricted (seccomp
    RuntimeDefault, runAsNonRoot, allowPrivilegeEscalation: false, capabilities.drop: [ALL])."""
    affinity: Affinity | None = None
    """Node affinity (required expressions ANDed into every term) and pod (anti-)affinity terms, appended
    unless present."""
    tolerations: list[Toleration] = []
    """Tolerations appended unless the pod already tolerates the same key and effect."""
    nodeSelector: Labels = {}
    """nodeSelector keys added where the pod does not set them."""
    priorityClassName: str | None = None
    """The priorityClassName of pods that have none."""
    topologySpreadConstraints: list[TopologySpreadConstraint] = []
    """Topology spread constraints, appended unless the pod already spreads on the same topologyKey."""


class PodSecurityRule(Model):
    """A Pod Security Standards level and the Kubernetes version whose checks apply."""

    level: Literal["privileged", "baseline", "restricted"]
    """privileged, baseline or restricted."""
    version: str = "latest"
    """latest, or v1.N: the Kubernetes minor version whose checks apply."""


def _pod_security(value: Any) -> Any:
    if value is None:
        return None
    try:
        level, version = parse_level_version(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    return {"level": level, "version": version}


class MaxResourcesRule(Model):
    """Upper bounds on requests and limits, per container and per pod."""

    perContainer: dict[str, Quantity] = {}
    """Per container: a bare resource name bounds request and limit; requests.X or limits.X bounds one
    (cpu: "2", limits.memory: 4Gi)."""
    perPod: dict[str, Quantity] = {}
    """Per pod: the pod's effective requests/limits, as Kubernetes computes them."""

    @field_validator("perContainer", "perPod")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            name = key.split(".", 1)[1] if key.startswith(("requests.", "limits.")) else key
            _resource_name(name)
        return value


def _cidr(value: Any) -> str:
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR such as 203.0.113.0/24 or 0.0.0.0/0") from None


class NetworkIsolationRule(Model):
    """Network isolation: the namespace must hold a default-deny NetworkPolicy, and the tenant's
    NetworkPolicies may reach only its own and shared namespaces (true: the defaults of every field)."""

    defaultDeny: list[Literal["Ingress", "Egress"]] = ["Ingress"]
    """The directions a default-deny NetworkPolicy must cover: Ingress, Egress (default: Ingress)."""
    allowedCIDRs: list[Annotated[str, BeforeValidator(_cidr)]] = []
    """IP blocks (203.0.113.0/24) the tenant's NetworkPolicies may reach."""
    allowDNS: bool = True
    """Whether the tenant's NetworkPolicies may reach cluster DNS (default: true)."""

    @field_validator("defaultDeny")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


def _network_isolation(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    return value


# --- CEL rules (ValidatingAdmissionPolicy-shaped: the expressions paste both ways) ---

CEL_IDENTIFIER = re.compile(r"[_A-Za-z][_A-Za-z0-9]*\Z")


def _cel_expression(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must be a CEL expression, not empty")
    return value


CelExpression = Annotated[str, AfterValidator(_cel_expression)]


def _unique_names(items: list[Any], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"{what} {item.name!r} is defined twice; names must be unique")
        seen.add(item.name)


class CelMatch(Model):
    """What a CEL rule judges: kinds (Pod includes the pod controllers' templates) and operations."""

    kinds: list[str] = ["Pod"]
    """The kinds judged (default Pod; a rule naming Pod also judges the pod templates of Deployments, Jobs and
    the other pod controllers it does not name)."""
    operations: list[Literal["CREATE", "UPDATE"]] = ["CREATE", "UPDATE"]
    """CREATE, UPDATE or both (default both)."""

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one kind")
        unknown = [k for k in value if k not in CEL_KINDS]
        if unknown:
            raise ValueError(f"unknown kind {', '.join(map(repr, unknown))}; a CEL rule may name "
                             f"{', '.join(CEL_KINDS)}")
        return list(dict.fromkeys(value))

    @field_validator("operations")
    @classmethod
    def _some_operation(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name CREATE, UPDATE or both")
        return list(dict.fromkeys(value))


class CelMatchCondition(Model):
    """A condition the rule applies under: when one is false, the rule is skipped."""

    name: Annotated[str, AfterValidator(_label_key)]  # a qualified name, as ValidatingAdmissionPolicy requires
    """A qualified name, unique among the rule's conditions."""
    expression: CelExpression
    """A CEL expression evaluating to a bool."""


class CelVariable(Model):
    """A named value, read as variables.<name>; evaluated only when read, once by each expression reading it."""

    name: str
    """A CEL identifier, unique among the rule's variables."""
    expression: CelExpression
    """A CEL expression; it sees the variables declared before it."""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not CEL_IDENTIFIER.fullmatch(value):
            raise ValueError(f"{value!r} is not a CEL identifier (letters, digits and '_', not starting with a digit)")
        return value


class CelValidation(Model):
    """A check: when its expression is false, the object has a finding."""

    expression: CelExpression
    """A CEL expression evaluating to a bool: false is a finding."""
    message: str | None = None
    """The finding's message (one line; required when the expression spans lines)."""
    messageExpression: CelExpression | None = None
    """A CEL expression evaluating to the message; wins over message when it gives a non-empty single line."""
    reason: Literal["Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"] | None = None
    """Unauthorized, Forbidden, Invalid or RequestEntityTooLarge (used when rendered as a
    ValidatingAdmissionPolicy)."""

    @model_validator(mode="after")
    def _message_shape(self) -> CelValidation:
        if self.message is not None and "\n" in self.message:
            raise ValueError("message must not contain line breaks")
        if self.message is None and "\n" in self.expression.strip():
            raise ValueError("message is required when the expression contains line breaks")
        return self


class CelRule(Model):
    """A rule written in CEL, shaped like a ValidatingAdmissionPolicy: what it judges, when, and its checks."""

    name: Annotated[str, AfterValidator(lambda v: _dns_label(v, "rule name"))]
    """A DNS label, unique among the policy's CEL rules; findings name the rule cel/<name>."""
    match: CelMatch = CelMatch()
    """The kinds and operations judged (default: Pod, CREATE and UPDATE)."""
    matchConditions: list[CelMatchCondition] = []
    """Conditions that must all be true for the rule to apply."""
    variables: list[CelVariable] = []
    """Named expressions the validations read as variables.<name>."""
    validations: list[CelValidation] = Field(min_length=1)
    """The checks (at least one): each false expression is a finding."""

    @model_validator(mode="after")
    def _unique(self) -> CelRule:
        _unique_names(self.variables, "variable")
        _unique_names(self.matchConditions, "matchCondition")
        return self


def _dns_label(value: str, what: str) -> str:
    if not DNS_LABEL.fullmatch(value) or len(value) > 63:
        raise ValueError(f"{what} {value!r} must be a DNS label (lowercase letters, digits and '-', at most 63)")
    return value


class Rules(Model):
    """Validations: what every pod must keep (after the defaults); each finding is routed by the policy's
    enforcement (Enforce denies, Warn warns, Audit reports)."""

    podSecurity: Annotated[PodSecurityRule | None, BeforeValidator(_pod_security, json_schema_input_type=Annotated[
        str, StringConstraints(pattern=POD_SECURITY_PATTERN)] | PodSecurityRule | None)] = None
    """Pod Security Standard: privileged | baseline | restricted, optionally with a version (restricted:v1.30),
    or {level, version}; default version latest."""
    requireRequests: list[ResourceName] = []
    """Resources every container must request (cpu, memory, ...)."""
    requireLimits: list[ResourceName] = []
    """Resources every container must limit."""
    requireProbes: list[Literal["liveness", "readiness", "startup"]] = []
    """Probes every app container must define: liveness, readiness, startup."""
    qosClass: Literal["Guaranteed", "Burstable", "BestEffort"] | None = None
    """Minimum QoS class: Guaranteed > Burstable > BestEffort, computed as Kubernetes does."""
    maxResources: MaxResourcesRule | None = None
    """Per-container and per-pod maxima."""
    allowedNodeLabels: dict[LabelKey, list[LabelValue]] = {}
    """Node label values a nodeSelector or required node affinity may select, per key."""
    requiredNodeLabels: list[LabelKey] = []
    """Node label keys every pod must pin (spec.nodeName is then refused)."""
    allowedTolerations: list[TolerationPattern] | None = None
    """Tolerations pods may carry; key may be a glob, fields left out match anything."""
    allowedPriorityClasses: list[str] | None = None
    """priorityClassName values pods may use."""
    allowedRegistries: list[str] | None = None
    """Image registries: HOST[/PATH], no scheme, no tag (registry.example.com/team, "*.mirror.example.com",
    docker.io/library)."""
    sharedNamespaces: list[NamespacePattern] = []
    """Namespaces outside the tenant that pod (anti-)affinity and the tenant's NetworkPolicies may reach."""
    networkIsolation: Annotated[NetworkIsolationRule | None, BeforeValidator(
        _network_isolation, json_schema_input_type=bool | NetworkIsolationRule | None)] = None
    """true, or {defaultDeny, allowedCIDRs, allowDNS}: the namespace must hold a default-deny NetworkPolicy, and
    the tenant's NetworkPolicies may reach only its own and shared namespaces."""
    cel: list[CelRule] = []
    """Custom rules in CEL, shaped like ValidatingAdmissionPolicy validations."""

    @field_validator("cel")
    @classmethod
    def _unique_rules(cls, value: list[CelRule]) -> list[CelRule]:
        _unique_names(value, "CEL rule")
        return value


class Quota(Model):
    """Resource quota checked when pods are created, with ResourceQuota keys: a pod that would exceed a
    bound, or omits a request or limit for a resource under quota, is refused."""

    hard: dict[QuotaKey, Quantity] = {}
    """Bounds summed over every namespace of the tenant (TenantPolicy only): requests.cpu, limits.memory, pods,
    requests.nvidia.com/gpu, ..."""
    perNamespace: dict[QuotaKey, Quantity] = {}
    """Bounds for each namespace."""


class Exemption(Model):
    """Requests this policy does not apply to: the criteria of one entry are ANDed."""

    namespaces: list[NamespacePattern] = []
    """Namespace names or globs."""
    users: list[str] = []
    """User name globs (system:serviceaccount:ci:deployer)."""
    groups: list[str] = []
    """Group names."""
    reason: str = ""
    """Why; lint warns when missing."""
    expires: date | None = None
    """Date (YYYY-MM-DD) after which the entry no longer applies."""

    @model_validator(mode="after")
    def _names_something(self) -> Exemption:
        if not (self.namespaces or self.users or self.groups):
            raise ValueError("an exemption must name namespaces, users or groups")
        return self


class Metadata(Model):
    """The policy's name, labels and annotations (other metadata is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    """The policy's name: lowercase letters, digits, '-' and '.'."""
    labels: Labels = {}
    """Labels of the policy document (not applied to pods)."""
    annotations: Annotations = {}
    """Annotations of the policy document (not applied to pods)."""

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not DNS_SUBDOMAIN.fullmatch(value) or len(value) > 253:
            raise ValueError(f"{value!r} is not a valid name (lowercase letters, digits, '-' and '.')")
        return value


# --- spec.podTemplates: where other kinds (Argo Rollouts, Knative Services, ...) keep their pod template ---

KIND_NAME = re.compile(r"[A-Z][A-Za-z0-9]*\Z")
PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


class PodTemplateLocation(Model):
    """{kind: Rollout, group: argoproj.io, path: spec.template}: objects of this API group and kind are
    judged through the pod template at path (dotted field names from the object root), as a Deployment
    is through spec.template; the defaults' patch paths point inside it. group is the API group of
    the object's apiVersion ("" for the core group), so a Knative Service (serving.knative.dev) is told
    apart from the core Service."""

    kind: str
    """The object's kind (CamelCase, e.g. Rollout)."""
    group: str
    """The API group of the object's apiVersion (argoproj.io; "" for the core group)."""
    path: str
    """Where the pod template is: field names from the object root joined by '.' (spec.template)."""

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not KIND_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a kind (CamelCase, e.g. Rollout)")
        return value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        if value and (not DNS_SUBDOMAIN.fullmatch(value) or len(value) > 253):
            raise ValueError(f"{value!r} is not an API group (e.g. argoproj.io; \"\" for the core group)")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        parts = value.split(".")
        if not all(PATH_PART.fullmatch(p) for p in parts):
            raise ValueError(f"{value!r} is not a field path such as spec.template (field names joined by '.', "
                             "no list indexes)")
        return value

    @model_validator(mode="after")
    def _not_built_in(self) -> PodTemplateLocation:
        if builtin_group(self.kind) == self.group:
            where = ".".join(template_prefix(self.kind) or ()) or "the object itself"
            shown = f"{self.kind} ({self.group})" if self.group else self.kind
            raise ValueError(f"{shown} is judged through {where} already; name other kinds here")
        return self

    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))


class ClusterPolicySpec(Model):
    """Defaults, rules, quota and exemptions."""

    enforcement: Literal["Enforce", "Warn", "Audit"] = "Enforce"
    """Enforce: violations deny. Warn: allowed, with kubectl warnings. Audit: allowed, findings as
    auditAnnotations; defaults only reported."""
    defaults: Defaults = Defaults()
    """Mutations: fill only what the pod leaves out. The tenant's defaults are applied first, then the
    cluster's: the most specific default wins, field by field."""
    rules: Rules = Rules()
    """Validations of the pod (after the defaults), each finding routed by enforcement."""
    quota: Quota | None = None
    """Resource quota: hard (TenantPolicy: summed over all the tenant's namespaces) and perNamespace."""
    exemptions: list[Exemption] = []
    """Requests this policy does not apply to; the criteria of one entry are ANDed, entries are ORed."""
    podTemplates: list[PodTemplateLocation] = []
    """Other kinds with a pod template (an Argo Rollout, a Knative Service, ...): objects of each are judged
    through the template at its path, as a Deployment is through spec.template."""

    @field_validator("podTemplates")
    @classmethod
    def _one_path_per_kind(cls, value: list[PodTemplateLocation]) -> list[PodTemplateLocation]:
        seen: dict[tuple[str, str], str] = {}
        for entry in value:
            first = seen.setdefault((entry.group, entry.kind), entry.path)
            if first != entry.path:
                raise ValueError(f"{entry.kind} ({entry.group or 'core'}) is named twice, at {first} and at "
                                 f"{entry.path}; one path per kind")
        return value

    @field_validator("quota")
    @classmethod
    def _per_namespace_only(cls, value: Quota | None) -> Quota | None:
        if value is not None and value.hard:
            raise ValueError("quota.hard bounds a tenant and belongs in a TenantPolicy; a ClusterPolicy may set "
                             "quota.perNamespace")
        return value


class TenantPolicySpec(ClusterPolicySpec):
    """The tenant's namespaces, defaults, rules, quota and exemptions."""

    namespaces: list[NamespacePattern] = []
    """The tenant's namespaces: names or shell globs (customer-a, "customer-a-*")."""
    namespaceSelector: LabelSelectorModel | None = None
    """Namespaces claimed by their labels (needs the cluster view)."""

    @field_validator("quota")
    @classmethod
    def _per_namespace_only(cls, value: Quota | None) -> Quota | None:  # tenants may bound the whole tenant
        return value

    @model_validator(mode="after")
    def _claims_namespaces(self) -> TenantPolicySpec:
        if not self.namespaces and self.namespaceSelector is None:
            raise ValueError("a TenantPolicy must claim namespaces (spec.namespaces or spec.namespaceSelector)")
        return self


class ClusterPolicyDoc(Model):
    """A policy for every namespace: defaults and rules applied to the pods of every namespace that is not
    exempt, under every tenant (a tenant's own defaults first). Enforced by the tenantguard admission webhook."""

    apiVersion: Literal["tenantguard.io/v1alpha1"]
    """Always tenantguard.io/v1alpha1."""
    kind: Literal["ClusterPolicy"]
    """ClusterPolicy: applies in every namespace that is not exempt, under every tenant."""
    metadata: Metadata
    """The policy's name (unique per kind), labels and annotations."""
    spec: ClusterPolicySpec = ClusterPolicySpec()
    """Defaults, rules, quota and exemptions."""


class TenantPolicyDoc(Model):
    """A tenant's policy: the namespaces it claims, the defaults its pods get, the rules they must keep and
    its quota, on top of every ClusterPolicy. Enforced by the tenantguard admission webhook."""

    apiVersion: Literal["tenantguard.io/v1alpha1"]
    """Always tenantguard.io/v1alpha1."""
    kind: Literal["TenantPolicy"]
    """TenantPolicy: applies in the namespaces it claims (spec.namespaces, spec.namespaceSelector), on top of
    every ClusterPolicy."""
    metadata: Metadata
    """The policy's name (the tenant's name, unique), labels and annotations."""
    spec: TenantPolicySpec
    """The tenant's namespaces, defaults, rules, quota and exemptions."""


PolicyDoc = ClusterPolicyDoc | TenantPolicyDoc
POLICY_KINDS: dict[str, type[ClusterPolicyDoc | TenantPolicyDoc]] = {
    "ClusterPolicy": ClusterPolicyDoc, "TenantPolicy": TenantPolicyDoc}
