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
    field_validator,
    model_validator,
)

from webhook.core.pod_security import parse_level_version
from webhook.core.quantity import QuantityError, parse_quantity
from webhook.core.selectors import is_glob

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


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _quantity(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError("must be a quantity such as 500m, 2 or 1Gi, not a boolean")  # noqa: TRY004 (pydantic)
    try:
        parse_quantity(value)
    except (QuantityError, TypeError) as exc:
        raise ValueError(f"invalid quantity {value!r}: {exc}") from None
    return str(value)


Quantity = Annotated[str, BeforeValidator(_quantity)]


def _resource_name(value: Any) -> str:
    if not isinstance(value, str) or not RESOURCE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a resource name (cpu, memory, ephemeral-storage, hugepages-<size>, "
                         "or a domain-prefixed extended resource such as nvidia.com/gpu)")
    return value


ResourceName = Annotated[str, BeforeValidator(_resource_name)]


def _quota_key(value: Any) -> str:
    if not isinstance(value, str) or not QUOTA_KEY.fullmatch(value):
        raise ValueError(f"{value!r} is not a ResourceQuota key (requests.cpu, limits.memory, cpu, memory, pods, "
                         "requests.nvidia.com/gpu, ...)")
    return value


QuotaKey = Annotated[str, BeforeValidator(_quota_key)]


def _namespace_pattern(value: Any) -> str:
    if not isinstance(value, str) or not value or not NAMESPACE_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} is not a namespace name or shell glob")
    return value


NamespacePattern = Annotated[str, BeforeValidator(_namespace_pattern)]


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
LabelValue = Annotated[str, BeforeValidator(_to_str), AfterValidator(_label_value)]
AnnotationKey = Annotated[str, AfterValidator(_annotation_key)]
AnnotationValue = Annotated[str, BeforeValidator(_to_str)]  # any string
Labels = dict[LabelKey, LabelValue]
Annotations = Annotated[dict[AnnotationKey, AnnotationValue], AfterValidator(_annotations_size)]


# --- Kubernetes shapes used in defaults and rules (the fields we read; unknown ones rejected) ---

class LabelSelectorRequirement(Model):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] = []

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelectorModel(Model):
    matchLabels: Labels = {}
    matchExpressions: list[LabelSelectorRequirement] = []


class SeccompProfile(Model):
    type: Literal["RuntimeDefault", "Localhost", "Unconfined"]
    localhostProfile: str | None = None


AppArmorProfile = SeccompProfile


class SELinuxOptions(Model):
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class Capabilities(Model):
    add: list[str] | None = None
    drop: list[str] | None = None


class WindowsOptions(Model):
    gmsaCredentialSpecName: str | None = None
    gmsaCredentialSpec: str | None = None
    runAsUserName: str | None = None
    hostProcess: bool | None = None


class Sysctl(Model):
    name: str
    value: str


class ContainerSecurityContext(Model):
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
    """``defaults.securityContext``: a pod part and a container part, or the string ``restricted``."""

    preset: Literal["restricted"] | None = None
    pod: PodSecurityContext = PodSecurityContext()
    container: ContainerSecurityContext = ContainerSecurityContext()


def _security_preset(value: Any) -> Any:
    if isinstance(value, str):
        return {"preset": value}
    return value


class Toleration(Model):
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
    """An allowed toleration: ``key`` may be a glob; fields left out match anything."""

    key: Annotated[str, AfterValidator(_toleration_key_pattern)] = "*"
    operator: Literal["Exists", "Equal"] | None = None
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Probe(Model):
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
    liveness: Probe | None = None
    readiness: Probe | None = None
    startup: Probe | None = None


class ResourceDefaults(Model):
    requests: dict[ResourceName, Quantity] = {}
    limits: dict[ResourceName, Quantity] = {}

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
    nodeAffinity: dict[str, Any] | None = None
    podAffinity: dict[str, Any] | None = None
    podAntiAffinity: dict[str, Any] | None = None

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
    maxSkew: int = Field(ge=1)
    topologyKey: LabelKey
    whenUnsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    labelSelector: LabelSelectorModel | None = None
    matchLabelKeys: list[LabelKey] | None = None
    minDomains: int | None = None
    nodeAffinityPolicy: Literal["Honor", "Ignore"] | None = None
    nodeTaintsPolicy: Literal["Honor", "Ignore"] | None = None


class Defaults(Model):
    labels: Labels = {}
    annotations: Annotations = {}
    resources: ResourceDefaults | None = None
    probes: ProbeDefaults | None = None
    securityContext: Annotated[SecurityContextDefaults | None, BeforeValidator(_security_preset)] = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] = []
    nodeSelector: Labels = {}
    priorityClassName: str | None = None
    topologySpreadConstraints: list[TopologySpreadConstraint] = []


class PodSecurityRule(Model):
    level: Literal["privileged", "baseline", "restricted"]
    version: str = "latest"


def _pod_security(value: Any) -> Any:
    if value is None:
        return None
    try:
        level, version = parse_level_version(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    return {"level": level, "version": version}


class MaxResourcesRule(Model):
    perContainer: dict[str, Quantity] = {}
    perPod: dict[str, Quantity] = {}

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
    """``rules.networkIsolation`` (``true`` for the defaults): see webhook/core/validators/network.py."""

    defaultDeny: list[Literal["Ingress", "Egress"]] = ["Ingress"]
    allowedCIDRs: list[Annotated[str, BeforeValidator(_cidr)]] = []
    allowDNS: bool = True

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


class Rules(Model):
    podSecurity: Annotated[PodSecurityRule | None, BeforeValidator(_pod_security)] = None
    requireRequests: list[ResourceName] = []
    requireLimits: list[ResourceName] = []
    requireProbes: list[Literal["liveness", "readiness", "startup"]] = []
    qosClass: Literal["Guaranteed", "Burstable", "BestEffort"] | None = None
    maxResources: MaxResourcesRule | None = None
    allowedNodeLabels: dict[LabelKey, list[LabelValue]] = {}
    requiredNodeLabels: list[LabelKey] = []
    allowedTolerations: list[TolerationPattern] | None = None
    allowedPriorityClasses: list[str] | None = None
    allowedRegistries: list[str] | None = None
    sharedNamespaces: list[NamespacePattern] = []
    networkIsolation: Annotated[NetworkIsolationRule | None, BeforeValidator(_network_isolation)] = None


class Quota(Model):
    hard: dict[QuotaKey, Quantity] = {}
    perNamespace: dict[QuotaKey, Quantity] = {}


class Exemption(Model):
    namespaces: list[NamespacePattern] = []
    users: list[str] = []
    groups: list[str] = []
    reason: str = ""
    expires: date | None = None

    @model_validator(mode="after")
    def _names_something(self) -> Exemption:
        if not (self.namespaces or self.users or self.groups):
            raise ValueError("an exemption must name namespaces, users or groups")
        return self


class Metadata(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    labels: Labels = {}
    annotations: Annotations = {}

    @field_validator("name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not DNS_SUBDOMAIN.fullmatch(value) or len(value) > 253:
            raise ValueError(f"{value!r} is not a valid name (lowercase letters, digits, '-' and '.')")
        return value


class ClusterPolicySpec(Model):
    enforcement: Literal["Enforce", "Warn", "Audit"] = "Enforce"
    defaults: Defaults = Defaults()
    rules: Rules = Rules()
    quota: Quota | None = None
    exemptions: list[Exemption] = []

    @field_validator("quota")
    @classmethod
    def _per_namespace_only(cls, value: Quota | None) -> Quota | None:
        if value is not None and value.hard:
            raise ValueError("quota.hard bounds a tenant and belongs in a TenantPolicy; a ClusterPolicy may set "
                             "quota.perNamespace")
        return value


class TenantPolicySpec(ClusterPolicySpec):
    namespaces: list[NamespacePattern] = []
    namespaceSelector: LabelSelectorModel | None = None

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
    apiVersion: Literal["tenantguard.io/v1alpha1"]
    kind: Literal["ClusterPolicy"]
    metadata: Metadata
    spec: ClusterPolicySpec = ClusterPolicySpec()


class TenantPolicyDoc(Model):
    apiVersion: Literal["tenantguard.io/v1alpha1"]
    kind: Literal["TenantPolicy"]
    metadata: Metadata
    spec: TenantPolicySpec


PolicyDoc = ClusterPolicyDoc | TenantPolicyDoc
POLICY_KINDS: dict[str, type[ClusterPolicyDoc | TenantPolicyDoc]] = {
    "ClusterPolicy": ClusterPolicyDoc, "TenantPolicy": TenantPolicyDoc}
