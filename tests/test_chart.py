"""The Helm chart, checked for real: helm lint/template, the Kubernetes 1.35 schema,
the safety properties (excluded namespaces, what the webhooks intercept, RBAC,
failure policies, an install that denies and mutates nothing), the certificate
modes, the install notes, and our own `tenantguard dry-run` on what the chart renders.

helm comes from .tools/bin, installed by .ci/chart-tools: without it these tests fail.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import k8s_schema

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "tenantguard"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
HELM = ROOT / ".tools" / "bin" / "helm"
RELEASE = "ci"
NAMESPACE = "tenantguard"
KUBE_VERSION = "1.35.0"
FULLNAME = f"{RELEASE}-tenantguard"
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
ALWAYS_EXCLUDED = {NAMESPACE, "kube-system"}


# --------------------------------------------------------------------------- helm


def helm_path() -> Path:
    if HELM.is_file() and os.access(HELM, os.X_OK):
        return HELM
    pytest.fail(f"{HELM} is missing: run .ci/chart-tools (it installs helm and kubectl)")


def run_helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm_path()), *args], capture_output=True, text=True, check=False)


@functools.cache
def _render(args: tuple[str, ...], namespace: str) -> tuple[dict, ...]:
    out = run_helm(
        "template", RELEASE, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION, *args
    )
    if out.returncode != 0:
        raise RenderError(out.stderr)
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


class RenderError(Exception):
    pass


def render(*args: str, namespace: str = NAMESPACE, include_tests: bool = True) -> list[dict]:
    """Rendered objects; `helm template` leaves hook pods (helm test) in, like an install."""
    docs = list(_render(tuple(args), namespace))
    if not include_tests:
        docs = [d for d in docs if "helm.sh/hook" not in (d["metadata"].get("annotations") or {})]
    return docs


def values_args(path: Path) -> tuple[str, ...]:
    return ("-f", str(path))


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def webhooks(docs: list[dict]) -> list[dict]:
    return [w for kind in WEBHOOK_KINDS for cfg in by_kind(docs, kind) for w in cfg["webhooks"]]


values_files = pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)


# --------------------------------------------------------------------------- schema


class KubernetesSchemas:
    """One validator per (apiVersion, kind) against the Kubernetes 1.35 strict schema.

    `kubernetes_validate.validate()` reads and parses the 1.5 MB `_definitions.json`
    on every call; here it is read once into a `referencing` registry that every
    per-kind Draft 2020-12 validator shares (the same schema files and resolution
    the package uses: `v1.35.0-local-strict/<kind>-<group>-<version>.json`, whose
    `$ref`s point at `https://kubernetes.io/api/_definitions.json`).
    """

    def __init__(self, version: str = KUBE_VERSION):
        import importlib_resources
        import jsonschema
        from referencing import Registry, Resource

        self._jsonschema = jsonschema
        self._Resource = Resource
        self.version = version
        self.base = (
            importlib_resources.files("kubernetes_validate")
            / "kubernetes-json-schema"
            / f"v{version}-local-strict"
        )
        definitions = json.loads((self.base / "_definitions.json").read_text())
        self.registry = Resource.from_contents(definitions) @ Registry()
        self._cache: dict[tuple[str, str], object] = {}

    def validator(self, api_version: str, kind: str):
        key = (api_version, kind)
        if key not in self._cache:
            # same file naming as kubernetes_validate: rbac.authorization.k8s.io/v1 -> rbac-v1
            group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            path = self.base / f"{kind.lower()}-{group_version}.json"
            if not path.is_file():
                self._cache[key] = None
            else:
                schema = json.loads(path.read_text())
                registry = self._Resource.from_contents(schema) @ self.registry
                self._cache[key] = self._jsonschema.Draft202012Validator(schema, registry=registry)
        return self._cache[key]

    def errors(self, obj: dict) -> list[str]:
        validator = self.validator(obj["apiVersion"], obj["kind"])
        if validator is None:
            return [f"no Kubernetes {self.version} schema for {obj['apiVersion']} {obj['kind']}"]
        return [
            f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]


# cert-manager's CRDs are not part of the Kubernetes schema: the fields the chart
# uses, checked strictly against cert-manager.io/v1 (names and types from its API).
_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": ["Issuer", "ClusterIssuer"]},
        "group": {"type": "string"},
    },
}
_META = {"type": "object", "required": ["name", "namespace"]}
CERT_MANAGER_SCHEMAS = {
    "Issuer": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"},
            "kind": {"const": "Issuer"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {
                    "selfSigned": {"type": "object"},
                    "ca": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["secretName"],
                        "properties": {"secretName": {"type": "string"}},
                    },
                },
            },
        },
    },
    "Certificate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "cert-manager.io/v1"},
            "kind": {"const": "Certificate"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["secretName", "issuerRef"],
                "properties": {
                    "secretName": {"type": "string"},
                    "isCA": {"type": "boolean"},
                    "commonName": {"type": "string", "maxLength": 64},
                    "dnsNames": {"type": "array", "items": {"type": "string"}},
                    "duration": {"type": "string", "pattern": "^([0-9.]+(h|m|s))+$"},
                    "renewBefore": {"type": "string", "pattern": "^([0-9.]+(h|m|s))+$"},
                    "usages": {
                        "type": "array",
                        "items": {
                            "enum": [
                                "signing",
                                "digital signature",
                                "content commitment",
                                "key encipherment",
                                "key agreement",
                                "data encipherment",
                                "cert sign",
                                "crl sign",
                                "encipher only",
                                "decipher only",
                                "any",
                                "server auth",
                                "client auth",
                                "code signing",
                                "email protection",
                                "s/mime",
                                "ipsec end system",
                                "ipsec tunnel",
                                "ipsec user",
                                "timestamping",
                                "ocsp signing",
                                "microsoft sgc",
                                "netscape sgc",
                            ]
                        },
                    },
                    "privateKey": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                            "size": {"type": "integer"},
                            "rotationPolicy": {"enum": ["Never", "Always"]},
                        },
                    },
                    "issuerRef": _REF,
                },
            },
        },
    },
}


@pytest.fixture(scope="session")
def schemas() -> KubernetesSchemas:
    return KubernetesSchemas()


def schema_errors(schemas: KubernetesSchemas, obj: dict) -> list[str]:
    if obj["apiVersion"].startswith("cert-manager.io/"):
        import jsonschema

        schema = CERT_MANAGER_SCHEMAS.get(obj["kind"])
        if schema is None:
            return [f"no schema for {obj['apiVersion']} {obj['kind']}"]
        return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(obj)]
    return schemas.errors(obj)


# --------------------------------------------------------------------------- selectors


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics (an absent or empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def namespace_labels(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Labels a namespace may carry; the API server always sets kubernetes.io/metadata.name."""
    return {**(extra or {}), "kubernetes.io/metadata.name": name}


def assert_never_intercepts(docs: list[dict], namespaces: set[str]) -> None:
    hooks = webhooks(docs)
    assert hooks, "no webhooks rendered"
    # Whatever labels an admin or a tenant puts on these namespaces, no webhook matches them.
    label_sets = [
        {},
        {"tenantguard.io/managed": "true"},
        {"tenantguard.io/managed": "false"},
        {"customer": "a"},
        {"kubernetes.io/metadata.name": "default"},
    ]
    for hook in hooks:
        sel = hook["namespaceSelector"]
        pinned = [
            e
            for e in sel.get("matchExpressions", [])
            if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"
        ]
        assert pinned, f"{hook['name']}: no kubernetes.io/metadata.name NotIn expression"
        assert namespaces <= set(pinned[0]["values"]), (hook["name"], pinned[0]["values"])
        for ns in namespaces:
            for extra in label_sets:
                assert not selector_matches(sel, namespace_labels(ns, extra)), (hook["name"], ns, extra)


# --------------------------------------------------------------------------- lint + template + schema


def test_ci_values_files_exist():
    names = {p.name for p in CI_VALUES}
    assert {
        "default-values.yaml",
        "certmanager-values.yaml",
        "existing-secret-values.yaml",
        "ha-values.yaml",
        "custom-policies-values.yaml",
        "demo-values.yaml",
        "networkpolicy-cidrs-values.yaml",
        "networkpolicy-selectors-values.yaml",
        "client-auth-values.yaml",
    } <= names


@values_files
def test_helm_lint_strict(values):
    out = run_helm(
        "lint",
        "--strict",
        str(CHART),
        "-f",
        str(values),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


@values_files
def test_every_rendered_object_is_valid_kubernetes_1_35(values, schemas):
    docs = render(*values_args(values))
    assert docs
    problems = {}
    for obj in docs:
        errors = schema_errors(schemas, obj)
        if errors:
            problems[f"{obj['kind']}/{obj['metadata'].get('name')}"] = errors
    assert not problems, json.dumps(problems, indent=2)
    for obj in docs:
        namespaced = obj["kind"] not in {
            "ClusterRole",
            "ClusterRoleBinding",
            *WEBHOOK_KINDS,
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        }
        assert (obj["metadata"].get("namespace") == NAMESPACE) == namespaced, obj["metadata"]


def test_validator_is_built_once_and_catches_mistakes(schemas):
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}, "bogus": True},
    }
    errors = schemas.errors(bad)
    assert any("replicas" in e for e in errors) and any("bogus" in e for e in errors), errors
    assert schemas.validator("apps/v1", "Deployment") is schemas.validator("apps/v1", "Deployment")


# --------------------------------------------------------------------------- namespace exclusion


@values_files
def test_webhooks_never_intercept_the_release_namespace_or_kube_system(values):
    docs = render(*values_args(values))
    assert_never_intercepts(docs, ALWAYS_EXCLUDED)
    for vap_binding in by_kind(docs, "ValidatingAdmissionPolicyBinding"):
        sel = vap_binding["spec"]["matchResources"]["namespaceSelector"]
        for ns in ALWAYS_EXCLUDED:
            assert not selector_matches(sel, namespace_labels(ns))


def test_ordinary_namespaces_are_intercepted():
    for hook in webhooks(render()):
        for ns in ("default", "customer-a", "team-x-dev"):
            assert selector_matches(hook["namespaceSelector"], namespace_labels(ns)), (hook["name"], ns)
        assert selector_matches(hook["objectSelector"], {"app": "web"})
        assert not selector_matches(hook["objectSelector"], {"tenantguard.io/ignore": "true"})


def test_the_release_namespace_follows_the_release():
    docs = render(namespace="policy-system")
    assert_never_intercepts(docs, {"policy-system", "kube-system"})


@pytest.mark.parametrize(
    "attempt",
    [
        ["--set", "webhooks.namespaceSelector.excludeNamespaces=null"],
        ["--set-json", "webhooks.namespaceSelector.excludeNamespaces=[]"],
        [
            "--set-json",
            (
                'webhooks.namespaceSelector.matchExpressions=[{"key":"kubernetes.io/metadata.name",'
                '"operator":"In","values":["kube-system","tenantguard"]}]'
            ),
        ],
        ["--set-json", 'webhooks.namespaceSelector={"matchLabels":{}}'],
        ["--set-json", "webhooks.namespaceSelector=null"],
        ["--set-json", "webhooks.validate.namespaceSelector={}"],
        ["--set-json", "webhooks.mutate.namespaceSelector={}"],
        ["--set", "webhooks.namespaceSelector.excludeNamespaces[0]=default"],
    ],
    ids=lambda a: " ".join(a),
)
def test_values_cannot_remove_the_exclusions(attempt):
    """Each attempt is either refused (schema or template error) or leaves the exclusions in place."""
    try:
        docs = render(*attempt)
    except RenderError:
        return
    assert_never_intercepts(docs, ALWAYS_EXCLUDED)


def test_values_add_exclusions():
    docs = render(*values_args(CHART / "ci" / "custom-policies-values.yaml"))
    assert_never_intercepts(docs, ALWAYS_EXCLUDED | {"cert-manager", "monitoring"})
    for hook in webhooks(docs):
        sel = hook["namespaceSelector"]
        assert selector_matches(sel, namespace_labels("team-a"))
        assert not selector_matches(sel, namespace_labels("team-a", {"tenantguard.io/managed": "false"}))


# --------------------------------------------------------------------------- webhook configuration


def test_webhook_settings_and_safe_failure_policies():
    docs = render()
    mutating = one(docs, "MutatingWebhookConfiguration")["webhooks"]
    validating = one(docs, "ValidatingWebhookConfiguration")["webhooks"]
    assert len(mutating) == len(validating) == 1
    for hook in mutating + validating:
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["sideEffects"] == "None"
        assert hook["matchPolicy"] == "Equivalent"
        assert 1 <= hook["timeoutSeconds"] <= 10
        svc = hook["clientConfig"]["service"]
        assert (svc["name"], svc["namespace"], svc["port"]) == (FULLNAME, NAMESPACE, 443)
        assert base64.b64decode(hook["clientConfig"]["caBundle"]).startswith(b"-----BEGIN CERTIFICATE-----")
        assert {"key": "tenantguard.io/ignore", "operator": "NotIn", "values": ["true"]} in (
            hook["objectSelector"]["matchExpressions"]
        )
    (mutate,), (validate,) = mutating, validating
    assert mutate["clientConfig"]["service"]["path"] == "/mutate"
    assert validate["clientConfig"]["service"]["path"] == "/validate"
    assert mutate["reinvocationPolicy"] == "IfNeeded"
    # Documented defaults: mutation fails open, the security rules fail closed.
    assert mutate["failurePolicy"] == "Ignore"
    assert validate["failurePolicy"] == "Fail"


def _rule_table(hook: dict) -> dict[tuple[str, str], set[str]]:
    table: dict[tuple[str, str], set[str]] = {}
    for rule in hook["rules"]:
        assert rule["apiVersions"] == ["v1"] and rule.get("scope") == "Namespaced"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["operations"])
    return table


POD_CONTROLLERS = {
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
}


def rule_matches(rules: list[dict], group: str, resource: str, subresource: str, operation: str) -> bool:
    """admissionregistration/v1 RuleWithOperations matching, wildcards included ("*", "*/*",
    "pods/*", "*/status"), for a request on group/v1 resource[/subresource]."""
    for rule in rules:
        resources = rule["resources"]
        if subresource:
            resource_ok = bool(
                {f"{resource}/{subresource}", "*/*", f"{resource}/*", f"*/{subresource}"} & set(resources)
            )
        else:
            resource_ok = bool({resource, "*"} & set(resources))
        if (
            resource_ok
            and {group, "*"} & set(rule["apiGroups"])
            and {"v1", "*"} & set(rule["apiVersions"])
            and {operation, "*"} & set(rule["operations"])
        ):
            return True
    return False


def test_webhook_rules_cover_pods_and_every_pod_controller():
    docs = render()
    validate = _rule_table(one(docs, "ValidatingWebhookConfiguration")["webhooks"][0])
    mutate = _rule_table(one(docs, "MutatingWebhookConfiguration")["webhooks"][0])
    controllers = POD_CONTROLLERS
    expected_validate = {
        ("", "pods"),
        ("", "pods/ephemeralcontainers"),
        ("", "pods/resize"),
        ("networking.k8s.io", "networkpolicies"),
        *controllers,
    }
    assert set(validate) == expected_validate
    # In-place resize exists only as an UPDATE of the pods/resize subresource.
    assert validate.pop(("", "pods/resize")) == {"UPDATE"}
    assert all(ops == {"CREATE", "UPDATE"} for ops in validate.values())
    # Mutation: no network policies; CREATE only where the pod spec is immutable; `kubectl debug`'s
    # ephemeral containers (an UPDATE of pods/ephemeralcontainers) get the security-context defaults.
    assert set(mutate) == {("", "pods"), ("", "pods/ephemeralcontainers"), *controllers}
    assert mutate[("", "pods")] == {"CREATE"} and mutate[("batch", "jobs")] == {"CREATE"}
    assert mutate[("", "pods/ephemeralcontainers")] == {"UPDATE"}
    assert all(mutate[k] == {"CREATE", "UPDATE"} for k in controllers - {("batch", "jobs")})


# Things every cluster needs to keep running, whatever state tenantguard is in: node
# heartbeats and leader election (Leases), Nodes, Events. (group, resource, subresource)
NEVER_INTERCEPTED = [
    ("coordination.k8s.io", "leases", ""),
    ("", "nodes", ""),
    ("", "nodes", "status"),
    ("", "events", ""),
    ("events.k8s.io", "events", ""),
]


@values_files
def test_no_rule_matches_leases_nodes_events_or_a_wildcard(values):
    docs = render(*values_args(values))
    rule_sets = {h["name"]: h["rules"] for h in webhooks(docs)}
    for vap in by_kind(docs, "ValidatingAdmissionPolicy"):
        rule_sets[vap["metadata"]["name"]] = vap["spec"]["matchConstraints"]["resourceRules"]
    assert rule_sets
    for name, rules in rule_sets.items():
        for rule in rules:
            for field in ("apiGroups", "apiVersions", "operations", "resources"):
                assert not any("*" in item for item in rule[field]), (name, field, rule)
            assert "coordination.k8s.io" not in rule["apiGroups"], (name, rule)
            assert not any(r.split("/")[0] == "leases" for r in rule["resources"]), (name, rule)
        for group, resource, sub in NEVER_INTERCEPTED:
            for op in ("CREATE", "UPDATE", "DELETE"):
                assert not rule_matches(rules, group, resource, sub, op), (name, group, resource, sub, op)
    for hook in webhooks(docs):  # the matcher has teeth (the policies of CEL rules may name other kinds only)
        assert rule_matches(hook["rules"], "", "pods", "", "CREATE"), hook["name"]


# --------------------------------------------------------------------------- CEL (matchConditions)

_CEL_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^'\\]*')|(?P<op>\|\||&&|==|!=|!|\(|\))|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<dot>\.))"
)


class CelError(Exception):
    pass


def cel_eval(expression: str, variables: dict):
    """Evaluate the CEL subset our matchConditions use: variables with field selection, string
    literals, ==, !=, !, &&, ||, parentheses. && and || follow CEL (commutative: an error on
    one side is absorbed when the other side decides). Anything outside the subset raises, so
    an expression that outgrows it fails the tests instead of passing them unread."""
    tokens, pos = [], 0
    while expression[pos:].strip():
        m = _CEL_TOKEN.match(expression, pos)
        if not m:
            raise CelError(f"outside the supported subset at {expression[pos:]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    tokens.append(("end", ""))
    i = 0

    def peek():
        return tokens[i]

    def take(kind=None, value=None):
        nonlocal i
        tok = tokens[i]
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            raise CelError(f"expected {value or kind}, found {tok[1]!r}")
        i += 1
        return tok

    # Each parse_* returns a thunk, so that && and || can evaluate their sides CEL's way.
    def parse_or():
        left = parse_and()
        while peek() == ("op", "||"):
            take()
            left = _logic(left, parse_and(), decisive=True)
        return left

    def parse_and():
        left = parse_eq()
        while peek() == ("op", "&&"):
            take()
            left = _logic(left, parse_eq(), decisive=False)
        return left

    def parse_eq():
        left = parse_unary()
        while peek() in (("op", "=="), ("op", "!=")):
            op = take()[1]
            right = parse_unary()
            left = (lambda a, b, eq: lambda: (a() == b()) == eq)(left, right, op == "==")
        return left

    def parse_unary():
        if peek() == ("op", "!"):
            take()
            inner = parse_unary()

            def negate():
                value = inner()
                if not isinstance(value, bool):
                    raise CelError("! on a non-bool")
                return not value

            return negate
        return parse_primary()

    def parse_primary():
        kind, value = peek()
        if (kind, value) == ("op", "("):
            take()
            inner = parse_or()
            take("op", ")")
            return inner
        if kind == "str":
            take()
            return lambda: value[1:-1]
        name = take("ident")[1]
        path = []
        while peek()[0] == "dot":
            take()
            path.append(take("ident")[1])

        def select():
            if name not in variables:
                raise CelError(f"undeclared reference to {name!r}")
            current = variables[name]
            for field in path:
                if not isinstance(current, dict) or field not in current:
                    raise CelError(f"no such key: {field}")
                current = current[field]
            return current

        return select

    def _logic(left, right, decisive: bool):
        def run():
            results = []
            for side in (left, right):
                try:
                    value = side()
                except CelError as exc:
                    results.append(exc)
                    continue
                if not isinstance(value, bool):
                    raise CelError("logical operator on a non-bool")
                if value is decisive:
                    return decisive
                results.append(value)
            for r in results:
                if isinstance(r, CelError):
                    raise r
            return not decisive

        return run

    tree = parse_or()
    take("end")
    result = tree()
    if not isinstance(result, bool):
        raise CelError("a matchCondition must evaluate to a bool")
    return result


def test_cel_subset_evaluator():
    v = {"request": {"operation": "UPDATE", "subResource": ""}, "object": None}
    assert cel_eval("request.operation == 'UPDATE'", v) is True
    assert cel_eval("!(request.operation != 'UPDATE') && request.subResource == ''", v) is True
    assert cel_eval("request.operation == 'UPDATE' || object.spec == 'x'", v) is True  # short-circuit
    assert cel_eval("object.spec == 'x' || request.operation == 'UPDATE'", v) is True  # commutative
    with pytest.raises(CelError):
        cel_eval("object.spec == 'x' || request.operation == 'CREATE'", v)
    with pytest.raises(CelError):
        cel_eval("has(object.spec)", v)


def _pod(resources: dict, labels: dict | None = None, image: str = "app:1") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "team-a", "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": image, "resources": resources}]},
    }


def _cel_request(operation: str, resource: str, subresource: str, obj: dict, old: dict | None) -> dict:
    """The variables the API server gives a matchCondition (admission.k8s.io/v1 AdmissionRequest)."""
    group = "apps" if resource in {"deployments", "statefulsets", "daemonsets", "replicasets"} else ""
    return {
        "request": {
            "operation": operation,
            "resource": {"group": group, "version": "v1", "resource": resource},
            "subResource": subresource,
            "namespace": obj["metadata"]["namespace"],
            "name": obj["metadata"]["name"],
        },
        "object": obj,
        "oldObject": old,
    }


SMALL = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
LARGE = {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}


def test_metadata_only_pod_updates_skip_validation_by_default():
    validate = one(render(), "ValidatingWebhookConfiguration")["webhooks"][0]
    (cond,) = validate["matchConditions"]
    expr = cond["expression"]
    sent = {
        "pod CREATE": _cel_request("CREATE", "pods", "", _pod(SMALL), None),
        "pod UPDATE changing spec": _cel_request(
            "UPDATE", "pods", "", _pod(SMALL, image="app:2"), _pod(SMALL)
        ),
        "kubectl debug (pods/ephemeralcontainers)": _cel_request(
            "UPDATE", "pods", "ephemeralcontainers", _pod(SMALL), _pod(SMALL)
        ),
        # In-place resize: an UPDATE of pods/resize carrying the whole Pod with its new resources.
        "in-place resize (pods/resize)": _cel_request("UPDATE", "pods", "resize", _pod(LARGE), _pod(SMALL)),
        # Any subresource is judged, even when the spec compares equal.
        "pods/resize leaving spec equal": _cel_request("UPDATE", "pods", "resize", _pod(SMALL), _pod(SMALL)),
        "Deployment UPDATE of labels": _cel_request(
            "UPDATE",
            "deployments",
            "",
            {"metadata": {"name": "web", "namespace": "team-a"}, "spec": {"replicas": 1}},
            {"metadata": {"name": "web", "namespace": "team-a"}, "spec": {"replicas": 1}},
        ),
    }
    for what, variables in sent.items():
        assert cel_eval(expr, variables) is True, what
    relabel = _cel_request("UPDATE", "pods", "", _pod(SMALL, labels={"app": "web", "v": "2"}), _pod(SMALL))
    assert cel_eval(expr, relabel) is False  # metadata-only pod UPDATE: skipped
    # The rules route the resize to /validate (UPDATE only) and never to /mutate.
    assert rule_matches(validate["rules"], "", "pods", "resize", "UPDATE")
    mutate = one(render(), "MutatingWebhookConfiguration")["webhooks"][0]
    assert not rule_matches(mutate["rules"], "", "pods", "resize", "UPDATE")
    off = one(
        render("--set", "webhooks.validate.skipMetadataOnlyPodUpdates=false"),
        "ValidatingWebhookConfiguration",
    )["webhooks"][0]
    assert "matchConditions" not in off


def test_failure_policies_are_values():
    docs = render(
        "--set",
        "webhooks.mutate.failurePolicy=Fail",
        "--set",
        "webhooks.validate.failurePolicy=Ignore",
        "--set",
        "webhooks.timeoutSeconds=3",
    )
    assert one(docs, "MutatingWebhookConfiguration")["webhooks"][0]["failurePolicy"] == "Fail"
    assert one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]["failurePolicy"] == "Ignore"
    assert {h["timeoutSeconds"] for h in webhooks(docs)} == {3}
    with pytest.raises(RenderError, match="failurePolicy"):
        render("--set", "webhooks.validate.failurePolicy=Maybe")
    with pytest.raises(RenderError, match="timeoutSeconds"):
        render("--set", "webhooks.timeoutSeconds=30")


def test_opt_out_label_is_protected_by_a_validating_admission_policy():
    docs = render()
    policy = one(docs, "ValidatingAdmissionPolicy")
    binding = one(docs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    guarded = {
        (g, r)
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert guarded == {("", "pods"), *POD_CONTROLLERS}
    text = json.dumps(policy["spec"])
    assert "tenantguard.io/ignore" in text and "system:masters" in text
    assert "system:serviceaccount:kube-system:replicaset-controller" in text
    # Checked on the object and in both kinds of template.
    exprs = [v["expression"] for v in policy["spec"]["validations"]]
    assert any("object.metadata.labels" in e for e in exprs)
    assert any("spec.template.metadata.labels" in e for e in exprs)
    assert any("spec.jobTemplate.spec.template.metadata.labels" in e for e in exprs)
    # Admin lists replace the defaults; the controllers stay.
    custom = one(
        render(*values_args(CHART / "ci" / "custom-policies-values.yaml")), "ValidatingAdmissionPolicy"
    )
    text = json.dumps(custom["spec"])
    assert "platform-admins" in text and "alice@example.com" in text and "system:masters" not in text
    assert "system:serviceaccount:kube-system:replicaset-controller" in text


def test_no_opt_out_means_no_label_and_no_policy():
    docs = render(*values_args(CHART / "ci" / "minimal-values.yaml"))
    assert not by_kind(docs, "ValidatingAdmissionPolicy")
    for hook in webhooks(docs):
        assert "tenantguard.io/ignore" not in json.dumps(hook.get("objectSelector", {}))


# --------------------------------------------------------------------------- RBAC


def writes_to_the_cluster(values: dict) -> bool:
    """Policies from the cluster (status) or the background audit (PolicyReports): more RBAC, below."""
    return (values.get("policies") or {}).get("source") == "cluster" or bool(
        (values.get("backgroundAudit") or {}).get("enabled"))


READ_ONLY_VALUES = [p for p in CI_VALUES if not writes_to_the_cluster(yaml.safe_load(p.read_text()) or {})]


@pytest.mark.parametrize("values", READ_ONLY_VALUES, ids=lambda p: p.name)
def test_cluster_role_is_exactly_the_cluster_view(values):
    docs = render(*values_args(values))
    role = one(docs, "ClusterRole")
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    expected = {
        (g, r, v)
        for g, r in [
            ("", "pods"),
            ("", "namespaces"),
            ("", "resourcequotas"),
            ("networking.k8s.io", "networkpolicies"),
        ]
        for v in ("get", "list", "watch")
    }
    assert granted == expected
    assert all(
        set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"]
    )  # no names, no URLs
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    deployment = one(docs, "Deployment")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "namespace": NAMESPACE,
            "name": deployment["spec"]["template"]["spec"]["serviceAccountName"],
        }
    ]
    assert not by_kind(docs, "Role") and not by_kind(docs, "RoleBinding")


# --------------------------------------------------------------------------- Deployment


def dockerfile_cmd() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    (cmd,) = re.findall(r"^CMD (\[.*\])\s*$", text, re.MULTILINE)
    return json.loads(cmd)


def test_deployment_matches_the_image_and_is_hardened():
    docs = render(include_tests=False)
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    (c,) = pod["containers"]
    # The chart passes the image's CMD explicitly, word for word.
    assert c["args"] == dockerfile_cmd()
    assert "command" not in c  # ENTRYPOINT ["tenantguard"] stays
    assert re.search(r'^ENTRYPOINT \["tenantguard"\]$', (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert user and int(user.group(1)) == pod["securityContext"]["runAsUser"] != 0
    assert c["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    for probe, path in (
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ):
        assert c[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}, probe
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True  # the cluster view needs its token
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert {"/etc/tenantguard/policies", "/etc/tenantguard/tls", "/tmp"} <= set(mounts)
    assert all(m.get("readOnly") for p, m in mounts.items() if p != "/tmp")
    assert "memory" in c["resources"]["requests"] and "cpu" in c["resources"]["requests"]
    terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    svc = one(docs, "Service")
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]


def test_ha_values():
    docs = render(*values_args(CHART / "ci" / "ha-values.yaml"))
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    assert pod["containers"][0]["args"][-2:] == ["--workers", "2"]


def test_single_replica_renders_no_pdb():
    docs = render(*values_args(CHART / "ci" / "minimal-values.yaml"))
    assert one(docs, "Deployment")["spec"]["replicas"] == 1
    assert not by_kind(docs, "PodDisruptionBudget")


@pytest.mark.parametrize(
    "values",
    [
        "default-values.yaml",
        "ha-values.yaml",
        "existing-secret-values.yaml",
        "networkpolicy-cidrs-values.yaml",
        "client-auth-values.yaml",
    ],
)
def test_our_pods_pass_our_own_restricted_policy(values, tmp_path):
    """The webhook Deployment and the helm test Pod pass `tenantguard dry-run` under podSecurity: restricted."""
    docs = render(*values_args(CHART / "ci" / values))
    workloads = [d for d in docs if d["kind"] in ("Deployment", "Pod")]
    assert {d["kind"] for d in workloads} == {"Deployment", "Pod"}
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(yaml.safe_dump_all(workloads, sort_keys=False))
    policy = tmp_path / "restricted.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "tenantguard.io/v1alpha1",
                "kind": "ClusterPolicy",
                "metadata": {"name": "restricted"},
                "spec": {"enforcement": "Enforce", "rules": {"podSecurity": "restricted"}},
            }
        )
    )
    cmd = [
        sys.executable,
        "-m",
        "webhook",
        "dry-run",
        "--policies",
        str(policy),
        "--output",
        "json",
        str(manifests),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.returncode in (0, 1), f"{shlex.join(cmd)} -> {out.returncode}\n{out.stderr}"
    report = json.loads(out.stdout)
    denied = [
        (r.get("kind"), r.get("name"), r.get("violations")) for r in report["results"] if not r["allowed"]
    ]
    assert not denied, json.dumps(denied, indent=2)
    assert out.returncode == 0
    assert len(report["results"]) == len(workloads)
    assert report["summary"]["denied"] == 0

    # Control: the same Deployment without its hardening is denied, so the check above has teeth.
    weak = json.loads(json.dumps(next(d for d in workloads if d["kind"] == "Deployment")))
    pod = weak["spec"]["template"]["spec"]
    pod.pop("securityContext")
    for c in pod["containers"]:
        c["securityContext"] = {"allowPrivilegeEscalation": True, "capabilities": {"add": ["NET_ADMIN"]}}
    manifests.write_text(yaml.safe_dump(weak))
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert json.loads(out.stdout)["summary"]["denied"] == 1


# --------------------------------------------------------------------------- who can reach the webhook

WEBHOOK_PORT = 8443
CIDRS_VALUES = CHART / "ci" / "networkpolicy-cidrs-values.yaml"
SELECTORS_VALUES = CHART / "ci" / "networkpolicy-selectors-values.yaml"
CLIENT_AUTH_VALUES = CHART / "ci" / "client-auth-values.yaml"


def is_hook(obj: dict) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def webhook_network_policy(docs: list[dict]) -> dict:
    """The NetworkPolicy installed with the release (not the helm test hook's)."""
    (policy,) = [d for d in by_kind(docs, "NetworkPolicy") if not is_hook(d)]
    return policy


def container_args(docs: list[dict]) -> list[str]:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c["args"]


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def webhook_pod_labels(docs: list[dict]) -> dict[str, str]:
    return one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]


def helm_test_pod_labels(docs: list[dict]) -> dict[str, str]:
    (pod,) = [d for d in by_kind(docs, "Pod") if is_hook(d)]
    return pod["metadata"]["labels"]


def _in_cidr(ip: str, cidr: str) -> bool:
    import ipaddress

    address, network = ipaddress.ip_address(ip), ipaddress.ip_network(cidr, strict=False)
    return address.version == network.version and address in network


def peer_admits(peer: dict, source: dict, policy_namespace: str) -> bool:
    """networking.k8s.io/v1 NetworkPolicyPeer semantics for one source: a pod
    {"ip", "namespace", "namespace_labels", "labels"} or a host {"ip"} (no labels)."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        return _in_cidr(source["ip"], block["cidr"]) and not any(
            _in_cidr(source["ip"], e) for e in block.get("except") or []
        )
    if "labels" not in source:  # a host (hostNetwork, a node, outside): selectors never select it
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], source["namespace_labels"]):
            return False
    elif source["namespace"] != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), source["labels"])


def admits(policy: dict, source: dict, port: int = WEBHOOK_PORT, target: dict | None = None) -> bool:
    """Does this NetworkPolicy let `source` connect to `port` of the webhook pod (`target`'s labels)?"""
    spec = policy["spec"]
    if target is not None and not selector_matches(spec["podSelector"], target):
        raise AssertionError("the policy does not select that pod")
    for rule in spec.get("ingress") or []:
        ports = rule.get("ports")
        if ports and not any(
            p.get("port") in (port, None) and p.get("protocol", "TCP") == "TCP" for p in ports
        ):
            continue
        peers = rule.get("from")
        if not peers or any(peer_admits(peer, source, policy["metadata"]["namespace"]) for peer in peers):
            return True
    return False


def pod_source(namespace: str, labels: dict[str, str], ip: str = "10.244.3.7") -> dict:
    return {
        "ip": ip,
        "namespace": namespace,
        "namespace_labels": namespace_labels(namespace),
        "labels": labels,
    }


KONNECTIVITY = pod_source("kube-system", {"app": "konnectivity-agent"}, ip="10.244.0.12")
TENANT_POD = pod_source("team-a", {"app": "web"})
TENANT_FAKE_KONNECTIVITY = pod_source("team-a", {"app": "konnectivity-agent"})
KUBE_SYSTEM_OTHER = pod_source("kube-system", {"k8s-app": "kube-dns"})
PROMETHEUS = pod_source("monitoring", {"app.kubernetes.io/name": "prometheus"}, ip="10.244.2.9")


def test_network_policy_matcher_has_teeth():
    policy = {
        "metadata": {"namespace": NAMESPACE},
        "spec": {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.128/25"]}},
                        {"podSelector": {"matchLabels": {"role": "x"}}},
                    ],
                    "ports": [{"protocol": "TCP", "port": WEBHOOK_PORT}],
                }
            ],
        },
    }
    assert admits(policy, {"ip": "10.0.0.5"}) and not admits(policy, {"ip": "10.0.0.200"})
    assert not admits(policy, {"ip": "10.0.0.5"}, port=9090)
    assert admits(policy, pod_source(NAMESPACE, {"role": "x"}, ip="192.168.0.1"))
    assert not admits(policy, pod_source("other", {"role": "x"}, ip="192.168.0.1"))
    assert not admits(policy, {"ip": "fd00::1"})


def test_network_policy_by_default_leaves_the_webhook_port_open_and_trusts_nothing():
    docs = render(include_tests=False)
    policy = webhook_network_policy(docs)
    spec = policy["spec"]
    target = webhook_pod_labels(docs)
    assert selector_matches(spec["podSelector"], target)
    assert not selector_matches(spec["podSelector"], helm_test_pod_labels(render()))  # only the webhook pods
    # Ingress only: egress stays open (the cluster view's list/watch and DNS).
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec
    # The one rule: the webhook port, every source (no `from`), so the API server is never shut out.
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": WEBHOOK_PORT}]}]
    for source in (KONNECTIVITY, TENANT_POD, {"ip": "203.0.113.9"}, {"ip": "fd00::9"}):
        assert admits(policy, source, target=target)
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert c["ports"][0]["containerPort"] == WEBHOOK_PORT
    assert "--trusted-network" not in c["args"]
    assert not [d for d in by_kind(render(), "NetworkPolicy") if is_hook(d)]  # helm test needs no opening


def test_network_policy_with_cidrs_admits_only_them_and_trusts_the_network():
    cidrs = yaml.safe_load(CIDRS_VALUES.read_text())["networkPolicy"]["apiServer"]["cidrs"]
    docs = render(*values_args(CIDRS_VALUES), include_tests=False)
    policy = webhook_network_policy(docs)
    target = webhook_pod_labels(docs)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": c}} for c in cidrs]
    assert rule["ports"] == [{"protocol": "TCP", "port": WEBHOOK_PORT}]
    for admitted in ("10.0.0.10", "10.0.0.11", "10.0.0.12", "fd00:10::10"):
        assert admits(policy, {"ip": admitted}, target=target), admitted
    for refused in ({"ip": "10.0.0.13"}, {"ip": "fd00:10::11"}, TENANT_POD, KONNECTIVITY, KUBE_SYSTEM_OTHER):
        assert not admits(policy, refused, target=target), refused
    args = container_args(docs)
    assert args.count("--trusted-network") == 1
    assert "--client-ca" not in args
    # Only that port is ever opened.
    assert all(p["port"] == WEBHOOK_PORT for r in policy["spec"]["ingress"] for p in r["ports"])


def test_network_policy_with_selectors_admits_only_the_api_servers_pods():
    values = yaml.safe_load(SELECTORS_VALUES.read_text())["networkPolicy"]["apiServer"]
    docs = render(*values_args(SELECTORS_VALUES), include_tests=False)
    policy = webhook_network_policy(docs)
    target = webhook_pod_labels(docs)
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": c}} for c in values["cidrs"]] + values["selectors"]
    assert admits(policy, KONNECTIVITY, target=target)
    assert admits(policy, {"ip": "10.225.0.4"}, target=target)
    # The same labels in a tenant's namespace, another kube-system pod, a tenant pod: refused.
    for refused in (TENANT_FAKE_KONNECTIVITY, KUBE_SYSTEM_OTHER, TENANT_POD, {"ip": "10.225.0.16"}):
        assert not admits(policy, refused, target=target), refused
    assert container_args(docs).count("--trusted-network") == 1
    only_selectors = render(
        "--set-json",
        "networkPolicy.apiServer.selectors=" + json.dumps(values["selectors"]),
        include_tests=False,
    )
    (rule,) = webhook_network_policy(only_selectors)["spec"]["ingress"]
    assert rule["from"] == values["selectors"]
    assert "--trusted-network" in container_args(only_selectors)


@pytest.mark.parametrize(
    "attempt, message",
    [
        (["--set-json", 'networkPolicy.apiServer.cidrs=["0.0.0.0/0"]'], "admits every address"),
        (["--set-json", 'networkPolicy.apiServer.cidrs=["::/0"]'], "admits every address"),
        (["--set-json", 'networkPolicy.apiServer.cidrs=["10.0.0.300/32"]'], "cidrs"),
        (["--set-json", 'networkPolicy.apiServer.cidrs=["10.0.0.1"]'], "cidrs"),
        (
            [
                "--set-json",
                'networkPolicy.apiServer.selectors=[{"namespaceSelector":{},"podSelector":{"matchLabels":{"app":"x"}}}]',
            ],
            "every namespace",
        ),
        (["--set-json", 'networkPolicy.apiServer.selectors=[{"podSelector":{}}]'], "every pod"),
        (["--set-json", "networkPolicy.apiServer.selectors=[{}]"], "selectors"),
        (
            ["--set-json", 'networkPolicy.apiServer.selectors=[{"ipBlock":{"cidr":"10.0.0.0/8"}}]'],
            "selectors",
        ),
        (
            ["--set-json", 'networkPolicy.metrics.from=[{"ipBlock":{"cidr":"10.0.0.0/8"},"podSelector":{}}]'],
            "from",
        ),
        (["--set", "networkPolicy.apiServer.nope=1"], "nope"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else None,
)
def test_api_server_sources_that_admit_far_more_are_refused(attempt, message):
    with pytest.raises(RenderError, match=message):
        render(*attempt)


def test_metrics_rule_admits_only_the_scrapers_and_drops_trusted_network():
    # Default: no metrics peers, one rule.
    assert len(webhook_network_policy(render(*values_args(CIDRS_VALUES)))["spec"]["ingress"]) == 1
    scrapers = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    docs = render(
        *values_args(CIDRS_VALUES), "--set-json", f"networkPolicy.metrics.from={json.dumps(scrapers)}"
    )
    policy = webhook_network_policy(docs)
    target = webhook_pod_labels(docs)
    _, metrics_rule = policy["spec"]["ingress"]
    assert metrics_rule == {"from": scrapers, "ports": [{"protocol": "TCP", "port": WEBHOOK_PORT}]}
    assert admits(policy, PROMETHEUS, target=target)
    assert admits(policy, {"ip": "10.0.0.10"}, target=target)
    for refused in (pod_source("team-a", PROMETHEUS["labels"]), pod_source("monitoring", {"app": "grafana"})):
        assert not admits(policy, refused, target=target), refused
    # /metrics shares the port with /validate: the network no longer holds only the API server.
    assert "--trusted-network" not in container_args(docs)
    # The same in the client-auth values file, where client certificates authenticate instead.
    client_auth = render(*values_args(CLIENT_AUTH_VALUES))
    assert len(webhook_network_policy(client_auth)["spec"]["ingress"]) == 2
    assert admits(webhook_network_policy(client_auth), PROMETHEUS)
    assert "--trusted-network" not in container_args(client_auth)
    assert "--client-ca" in container_args(client_auth)
    # With the port open, the metrics rule adds nothing and nothing is trusted.
    open_docs = render("--set-json", f"networkPolicy.metrics.from={json.dumps(scrapers)}")
    assert admits(webhook_network_policy(open_docs), TENANT_POD)
    assert "--trusted-network" not in container_args(open_docs)


def test_network_policy_can_be_disabled_and_then_nothing_is_trusted():
    docs = render(*values_args(CIDRS_VALUES), "--set", "networkPolicy.enabled=false")
    assert not by_kind(docs, "NetworkPolicy")
    assert "--trusted-network" not in container_args(docs)


def test_helm_test_pod_may_reach_a_closed_port_only_while_helm_test_runs():
    docs = render(*values_args(CIDRS_VALUES))
    (hook,) = [d for d in by_kind(docs, "NetworkPolicy") if is_hook(d)]
    (pod,) = [d for d in by_kind(docs, "Pod") if is_hook(d)]
    notes = hook["metadata"]["annotations"]
    assert notes["helm.sh/hook"] == "test" == pod["metadata"]["annotations"]["helm.sh/hook"]
    assert int(notes["helm.sh/hook-weight"]) < int(
        pod["metadata"]["annotations"].get("helm.sh/hook-weight", "0")
    )
    assert set(notes["helm.sh/hook-delete-policy"].split(",")) >= {"hook-succeeded", "hook-failed"}
    target = webhook_pod_labels(docs)
    tester = pod_source(NAMESPACE, pod["metadata"]["labels"])
    assert admits(hook, tester, target=target)
    assert not admits(webhook_network_policy(docs), tester, target=target)  # the release's policy never does
    for refused in (TENANT_POD, pod_source("team-a", pod["metadata"]["labels"]), {"ip": "10.0.0.10"}):
        assert not admits(hook, refused, target=target)
    assert hook["spec"]["policyTypes"] == ["Ingress"]


CLIENT_CA_DIR = "/etc/tenantguard/client-ca"


def test_client_auth_mounts_the_ca_and_passes_client_ca_and_each_client_name():
    values = yaml.safe_load(CLIENT_AUTH_VALUES.read_text())["clientAuth"]
    docs = render(*values_args(CLIENT_AUTH_VALUES))
    cm = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == f"{FULLNAME}-client-ca")
    assert cm["data"]["ca.crt"].strip() == base64.b64decode(values["caBundle"]).decode().strip()
    assert _x509(values["caBundle"]).extensions  # a real certificate
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    (ca_path,) = flag_values(c["args"], "--client-ca")
    assert flag_values(c["args"], "--client-name") == values["allowedNames"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "client-ca"]
    assert mount == {"name": "client-ca", "mountPath": CLIENT_CA_DIR, "readOnly": True}
    assert "subPath" not in mount  # a directory mount: an updated CA reaches the server without a restart
    assert ca_path == f"{CLIENT_CA_DIR}/ca.crt"
    (vol,) = [v for v in pod["volumes"] if v["name"] == "client-ca"]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    assert vol["configMap"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    # The kubelet presents no client certificate: the server answers the health endpoints without one,
    # so the probes stay HTTPS (readiness still follows the cluster view and the drain).
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert c[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}, probe
    (test_pod,) = [d for d in by_kind(docs, "Pod") if is_hook(d)]
    assert {"name": "CLIENT_AUTH", "value": "true"} in test_pod["spec"]["containers"][0]["env"]

    names = ["kube-apiserver-webhook-client", "apiserver.cp.example.com", "kube apiserver"]
    several = container_args(
        render(*values_args(CLIENT_AUTH_VALUES), "--set-json", f"clientAuth.allowedNames={json.dumps(names)}")
    )
    assert flag_values(several, "--client-name") == names
    anyone = container_args(
        render(*values_args(CLIENT_AUTH_VALUES), "--set-json", "clientAuth.allowedNames=[]")
    )
    assert "--client-name" not in anyone and "--client-ca" in anyone


@pytest.mark.parametrize("kind", ["Secret", "ConfigMap"])
def test_client_auth_from_an_existing_secret_or_configmap(kind):
    docs = render(
        "--set", "clientAuth.enabled=true",
        "--set", "clientAuth.existingSecret.name=apiserver-client-ca",
        "--set", f"clientAuth.existingSecret.kind={kind}",
    )  # fmt: skip
    assert not [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-client-ca")]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "client-ca"]
    if kind == "Secret":
        assert vol["secret"]["secretName"] == "apiserver-client-ca" and "configMap" not in vol
        assert vol["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    else:
        assert vol["configMap"]["name"] == "apiserver-client-ca" and "secret" not in vol
    assert flag_values(pod["containers"][0]["args"], "--client-ca") == [f"{CLIENT_CA_DIR}/ca.crt"]
    assert "--client-name" not in pod["containers"][0]["args"]


def test_client_auth_needs_exactly_one_ca_and_is_off_by_default():
    docs = render(include_tests=False)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert "--client-ca" not in pod["containers"][0]["args"]
    assert not [v for v in pod["volumes"] if v["name"] == "client-ca"]
    with pytest.raises(RenderError, match="clientAuth.caBundle"):
        render("--set", "clientAuth.enabled=true")
    ca = yaml.safe_load(CLIENT_AUTH_VALUES.read_text())["clientAuth"]["caBundle"]
    with pytest.raises(RenderError, match="not both"):
        render(*values_args(CLIENT_AUTH_VALUES), "--set", "clientAuth.existingSecret.name=x")
    with pytest.raises(RenderError, match="PEM"):
        render(
            "--set",
            "clientAuth.enabled=true",
            "--set",
            f"clientAuth.caBundle={base64.b64encode(b'nope').decode()}",
        )
    with pytest.raises(RenderError, match="kind"):
        render("--set", "clientAuth.enabled=true", "--set", "clientAuth.existingSecret.kind=Vault")
    # Disabled, the values are ignored: nothing mounted, no flag.
    off = render("--set", f"clientAuth.caBundle={ca}", include_tests=False)
    assert "--client-ca" not in container_args(off)
    assert not [d for d in by_kind(off, "ConfigMap") if d["metadata"]["name"].endswith("-client-ca")]


@values_files
def test_the_server_accepts_the_arguments_the_chart_gives_it(values):
    """Every flag the chart passes exists in `tenantguard serve`, spelled as the server spells it."""
    import argparse

    from webhook.cli import serve

    parser = argparse.ArgumentParser(exit_on_error=False)
    serve.add_arguments(parser)
    args = container_args(render(*values_args(values)))
    assert args[0] == "serve"
    parsed = parser.parse_args(args[1:])
    assert serve._flag_errors(parsed) == []
    assert parsed.trusted_network == ("--trusted-network" in args)
    assert parsed.client_name == flag_values(args, "--client-name")


# --------------------------------------------------------------------------- policies


def test_chart_policies_are_the_shipped_policies():
    shipped = {p.name: p.read_bytes() for p in (ROOT / "policies").glob("*.yaml")}
    in_chart = {p.name: p.read_bytes() for p in (CHART / "policies").glob("*.yaml")}
    assert in_chart == shipped, (
        "charts/tenantguard/policies/ differs from policies/: run .ci/chart-tools sync-policies"
    )


STARTER = CHART / "starter"
DEMO_VALUES = CHART / "ci" / "demo-values.yaml"
DEMO_TENANTS = {"trading", "customer-a", "edge", "ml"}
POLICY_KINDS = ("ClusterPolicy", "TenantPolicy")


def policy_documents(configmap: dict) -> list[dict]:
    """Every ClusterPolicy/TenantPolicy document in the policies ConfigMap."""
    return [
        doc
        for text in (configmap.get("data") or {}).values()
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and doc.get("kind") in POLICY_KINDS
    ]


def enforcement(doc: dict) -> str:
    return (doc.get("spec") or {}).get("enforcement", "Enforce")  # the policy schema's default


def extract_policies(configmap: dict, into: Path) -> Path:
    """The ConfigMap's files as the server sees them mounted."""
    into.mkdir()
    for name, text in configmap["data"].items():
        (into / name).write_text(text)
    return into


TENANTGUARD = Path(sys.executable).with_name("tenantguard")  # the console script of this venv


def tenantguard(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert TENANTGUARD.is_file(), f"{TENANTGUARD} is missing: pip install -e . in this venv"
    return subprocess.run([str(TENANTGUARD), *args], capture_output=True, text=True, check=False, cwd=cwd)


# A node agent as every monitoring stack ships it: host network and PID namespaces, the
# host's /proc, /sys and / mounted, a host port. Exactly what Pod Security "baseline" forbids.
NODE_EXPORTER = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "node-exporter", "namespace": "monitoring", "labels": {"app": "node-exporter"}},
    "spec": {
        "selector": {"matchLabels": {"app": "node-exporter"}},
        "template": {
            "metadata": {"labels": {"app": "node-exporter"}},
            "spec": {
                "hostNetwork": True,
                "hostPID": True,
                "containers": [
                    {
                        "name": "node-exporter",
                        "image": "quay.io/prometheus/node-exporter:v1.8.2",
                        "args": [
                            "--path.procfs=/host/proc",
                            "--path.sysfs=/host/sys",
                            "--path.rootfs=/host/root",
                        ],
                        "ports": [{"name": "metrics", "containerPort": 9100, "hostPort": 9100}],
                        "volumeMounts": [
                            {"name": "proc", "mountPath": "/host/proc", "readOnly": True},
                            {"name": "sys", "mountPath": "/host/sys", "readOnly": True},
                            {
                                "name": "root",
                                "mountPath": "/host/root",
                                "readOnly": True,
                                "mountPropagation": "HostToContainer",
                            },
                        ],
                    }
                ],
                "volumes": [
                    {"name": "proc", "hostPath": {"path": "/proc"}},
                    {"name": "sys", "hostPath": {"path": "/sys"}},
                    {"name": "root", "hostPath": {"path": "/"}},
                ],
            },
        },
    },
}
# An ordinary pod that sets nothing: with defaults cluster-wide, it would be patched.
BARE_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
}


def test_default_install_denies_nothing_and_mutates_nothing(tmp_path, schemas):
    cm = one(render(include_tests=False), "ConfigMap")
    policies = policy_documents(cm)
    assert policies, "the default install loads the starter policy"
    assert not [p["metadata"]["name"] for p in policies if p["kind"] == "TenantPolicy"]
    assert not [p["metadata"]["name"] for p in policies if enforcement(p) == "Enforce"]
    assert not [p["metadata"]["name"] for p in policies if (p.get("spec") or {}).get("defaults")]
    manifests = tmp_path / "node-agents.yaml"
    manifests.write_text(yaml.safe_dump_all([NODE_EXPORTER, BARE_POD], sort_keys=False))
    assert not schemas.errors(NODE_EXPORTER) and not schemas.errors(BARE_POD)
    default_dir = extract_policies(cm, tmp_path / "default")
    assert tenantguard("lint", "--strict", str(default_dir), cwd=tmp_path).returncode == 0

    dry_run = ("dry-run", "--output", "json", str(manifests), "--policies")
    out = tenantguard(*dry_run, str(default_dir), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    results = {r["kind"]: r for r in json.loads(out.stdout)["results"]}
    ds, pod = results["DaemonSet"], results["Pod"]
    assert ds["allowed"] and not [v for v in ds["violations"] if v["enforcement"] == "Enforce"]
    assert {v["enforcement"] for v in ds["violations"]} <= {"Warn", "Audit"}
    assert not ds["patch"] and not pod["patch"], "a default install changes no pod"
    # Judged, not skipped: the starter tells the owner what baseline would refuse.
    warned = " ".join(ds["warnings"])
    for check in ("hostNamespaces", "hostPathVolumes", "hostPorts"):
        assert check in warned, ds["warnings"]

    # Control: the demo set's Enforce baseline denies the same DaemonSet, so the check
    # above has teeth; the demo values therefore keep monitoring out of the webhooks.
    demo_docs = render(*values_args(DEMO_VALUES), include_tests=False)
    demo_dir = extract_policies(one(demo_docs, "ConfigMap"), tmp_path / "demo")
    out = tenantguard(*dry_run, str(demo_dir), cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    denied = {r["kind"]: r for r in json.loads(out.stdout)["results"]}["DaemonSet"]
    assert not denied["allowed"]
    assert {(v["policy"], v["rule"]) for v in denied["violations"]
            if v["enforcement"] == "Enforce"} == {("cluster-baseline", "podSecurity")}
    assert_never_intercepts(demo_docs, {"monitoring"})


def test_demo_values_ship_the_demo_tenants_and_their_enforce_baseline():
    cm = one(render(*values_args(DEMO_VALUES)), "ConfigMap")
    shipped = {p.name: p.read_text() for p in (CHART / "policies").glob("*.yaml")}
    assert cm["data"] == shipped  # byte for byte, the starter left out
    policies = policy_documents(cm)
    assert DEMO_TENANTS <= {p["metadata"]["name"] for p in policies if p["kind"] == "TenantPolicy"}
    assert any(p["kind"] == "ClusterPolicy" and enforcement(p) == "Enforce" for p in policies)
    excluded = one(
        render("--set", "demoPolicies.enabled=true", "--set-json", 'demoPolicies.exclude=["trading.yaml"]'),
        "ConfigMap",
    )["data"]
    assert "trading.yaml" not in excluded and "edge.yaml" in excluded and "cluster-starter.yaml" in excluded


def test_policy_configmap_from_starter_values_and_set_file(tmp_path):
    docs = render(include_tests=False)
    cm = one(docs, "ConfigMap")
    starter = {p.name: p.read_text() for p in STARTER.glob("*.yaml")}
    assert list(starter) == ["cluster-starter.yaml"]
    assert cm["data"] == starter  # byte for byte, comments included
    dep = one(docs, "Deployment")
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "policies"]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]

    custom = one(render(*values_args(CHART / "ci" / "custom-policies-values.yaml")), "ConfigMap")
    assert sorted(custom["data"]) == ["baseline.yaml", "team-a.yaml"]
    assert yaml.safe_load(custom["data"]["team-a.yaml"])["kind"] == "TenantPolicy"

    extra = tmp_path / "team-x.yaml"
    extra.write_text(
        "apiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\nmetadata: {name: team-x}\n"
        "spec:\n  namespaces: [team-x]\n"
    )
    with_file = one(render("--set-file", f"policies.team-x={extra}"), "ConfigMap")["data"]
    assert with_file == {**starter, "team-x.yaml": extra.read_text()}
    # A values key naming the starter replaces it; an empty one removes it.
    replaced = one(render("--set-file", f"policies.cluster-starter={extra}"), "ConfigMap")["data"]
    assert replaced == {"cluster-starter.yaml": extra.read_text()}
    assert not one(render("--set", "policies.cluster-starter="), "ConfigMap").get("data")
    assert not one(render("--set", "starterPolicy.enabled=false"), "ConfigMap").get("data")


def test_the_old_shipped_policies_value_says_what_it_became():
    for args in (["--set", "shippedPolicies.enabled=true"], ["--set", "shippedPolicies.enabled=false"]):
        with pytest.raises(RenderError, match="demoPolicies"):
            render(*args)


# --------------------------------------------------------------------------- install notes


def install_notes(*args: str, tmp_path: Path) -> str:
    """NOTES.txt as `helm install` prints it (client-side dry run: no cluster is contacted)."""
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-cluster")}
    cmd = [str(helm_path()), "install", RELEASE, str(CHART), "--namespace", NAMESPACE]
    cmd += ["--dry-run=client", "--output", "json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["info"]["notes"]


def _loaded(notes: str) -> dict[str, str]:
    """kind/name -> enforcement, from the "Policies loaded" lines."""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^  \S+\.ya?ml\s+((?:Cluster|Tenant)Policy/\S+)\s+(\w+)$", notes, re.MULTILINE)
    }


def _enforce_line(notes: str) -> str:
    (line,) = [ln for ln in notes.splitlines() if ln.startswith("Enforce: ")]
    return line


def test_notes_show_what_is_loaded_whether_anything_enforces_and_how_to_get_there(tmp_path):
    notes = install_notes(tmp_path=tmp_path)
    assert _loaded(notes) == {"ClusterPolicy/cluster-starter": "Warn"}
    assert _enforce_line(notes).startswith("Enforce: off")
    # The way up, with the live-cluster report between steps.
    assert "Audit -> Warn -> Enforce" in notes
    assert "tenantguard audit --policies" in notes
    assert (
        f"kubectl -n {NAMESPACE} get configmap {FULLNAME}-policies"
        " -o jsonpath='{.data.cluster-starter\\.yaml}' > policies/cluster-starter.yaml"
    ) in notes
    assert "--set-file policies.cluster-starter=policies/cluster-starter.yaml" in notes
    assert "calico-system" in notes  # validation fails closed and no CNI namespace is excluded yet

    demo = install_notes("-f", str(DEMO_VALUES), tmp_path=tmp_path)
    loaded = _loaded(demo)
    assert {f"TenantPolicy/{t}" for t in DEMO_TENANTS} <= set(loaded)
    assert loaded["ClusterPolicy/probes-advisory"] == "Warn"
    enforce = _enforce_line(demo)
    assert enforce.startswith("Enforce: ON for ")
    assert "ClusterPolicy/cluster-baseline" in enforce and "TenantPolicy/trading" in enforce
    assert "probes-advisory" not in enforce
    assert "calico-system" not in demo  # namespaces are excluded there

    # A policy that names no enforcement is in Enforce mode, and NOTES say so.
    implicit = tmp_path / "team-x.yaml"
    implicit.write_text(
        "# no enforcement: the default\napiVersion: tenantguard.io/v1alpha1\nkind: TenantPolicy\n"
        "metadata: {name: team-x}\nspec:\n  namespaces: [team-x]\n---\n"
        "apiVersion: tenantguard.io/v1alpha1\nkind: ClusterPolicy\nmetadata: {name: audit-only}\n"
        "spec: {enforcement: Audit}\n"
    )
    mixed = install_notes("--set-file", f"policies.team-x={implicit}", tmp_path=tmp_path)
    assert _loaded(mixed) == {
        "ClusterPolicy/cluster-starter": "Warn",
        "TenantPolicy/team-x": "Enforce",
        "ClusterPolicy/audit-only": "Audit",
    }
    assert _enforce_line(mixed) == "Enforce: ON for TenantPolicy/team-x."

    empty = install_notes("--set", "starterPolicy.enabled=false", tmp_path=tmp_path)
    assert "none: every request is admitted unchanged" in empty
    assert _enforce_line(empty).startswith("Enforce: off")


OPEN_PORT_WARNING = "WARNING: THE WEBHOOK PORT IS OPEN TO EVERY SOURCE."


def _reach_section(notes: str) -> str:
    start = notes.index("Who can reach the webhook")
    return notes[start : notes.index("\nCheck it:", start)]


def test_notes_warn_when_the_api_server_source_is_unrestricted(tmp_path):
    default = _reach_section(install_notes(tmp_path=tmp_path))
    assert OPEN_PORT_WARNING in default
    assert "without --trusted-network" in default
    # How to close it, and how to see that the API server still gets through.
    assert "kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes" in default
    assert "--set-json 'networkPolicy.apiServer.cidrs=[" in default
    assert "--dry-run=server" in default and "failed calling webhook" in default
    assert "docs/install.md" in default

    closed = _reach_section(install_notes("-f", str(CIDRS_VALUES), tmp_path=tmp_path))
    assert "WARNING" not in closed
    for cidr in ("10.0.0.10/32", "10.0.0.12/32", "fd00:10::10/128"):
        assert f"\n    {cidr}\n" in closed
    assert "runs with --trusted-network" in closed
    assert "--dry-run=server" in closed
    assert f"kubectl -n {NAMESPACE} delete networkpolicy {FULLNAME}" in closed  # the way back

    pods = _reach_section(install_notes("-f", str(SELECTORS_VALUES), tmp_path=tmp_path))
    assert "WARNING" not in pods and "konnectivity-agent" in pods and "runs with --trusted-network" in pods

    disabled = _reach_section(install_notes("--set", "networkPolicy.enabled=false", tmp_path=tmp_path))
    assert "WARNING: NO NETWORKPOLICY PROTECTS THE WEBHOOK PODS" in disabled

    mtls = _reach_section(install_notes("-f", str(CLIENT_AUTH_VALUES), tmp_path=tmp_path))
    assert "WARNING" not in mtls
    assert "without --trusted-network" in mtls and "metrics" in mtls
    assert (
        f"ConfigMap {FULLNAME}-client-ca" in mtls and "kube-apiserver-webhook-client (--client-name)" in mtls
    )
    assert "HTTPS probes" in mtls
    open_mtls = _reach_section(
        install_notes(
            "--set",
            "clientAuth.enabled=true",
            "--set",
            "clientAuth.existingSecret.name=ca",
            tmp_path=tmp_path,
        )
    )
    assert OPEN_PORT_WARNING in open_mtls and "Secret ca" in open_mtls
    assert "any certificate that CA signed" in open_mtls


# --------------------------------------------------------------------------- failure posture docs


def failure_posture_table(doc: Path) -> list[str]:
    """The first table under the "## Failure posture" heading, as its lines."""
    text = doc.read_text()
    section = text.split("\n## Failure posture\n", 1)
    assert len(section) == 2, f"{doc.name}: no '## Failure posture' section"
    body = section[1].split("\n## ", 1)[0]
    lines = body.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_failure_posture_is_one_table_matching_the_chart():
    install = failure_posture_table(ROOT / "docs" / "install.md")
    security = failure_posture_table(ROOT / "SECURITY.md")
    assert install == security, "docs/install.md and SECURITY.md must carry the same failure-posture table"
    header, rows = install[0], install[2:]
    docs = render()
    mutate = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    validate = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert f"`{mutate['name']}`" in header and f"`failurePolicy: {mutate['failurePolicy']}`" in header
    assert f"`{validate['name']}`" in header and f"`failurePolicy: {validate['failurePolicy']}`" in header
    situations = [row.split("|")[1] for row in rows]
    for case in ("down", "slow", "certificate", "only `/mutate` failed"):
        assert any(case in cell for cell in situations), case
    assert any(f"({validate['timeoutSeconds']} s)" in cell for cell in situations)
    assert all(len(row.split("|")) == len(header.split("|")) for row in rows)
    text = "\n".join(install)
    natives = ("Pod Security admission", "ResourceQuota", "LimitRange", "NetworkPolicies")
    for native in (*natives, "ValidatingAdmissionPolicy"):
        assert native in text, native


# --------------------------------------------------------------------------- certificates


def _x509(pem_b64: str):
    from cryptography import x509

    return x509.load_pem_x509_certificate(base64.b64decode(pem_b64))


def test_self_signed_mode_is_consistent():
    from cryptography import x509
    from cryptography.x509.verification import DNSName, PolicyBuilder, Store

    docs = render()
    secrets = {s["metadata"]["name"]: s for s in by_kind(docs, "Secret")}
    tls, ca_secret = secrets[f"{FULLNAME}-tls"], secrets[f"{FULLNAME}-ca"]
    assert tls["type"] == "kubernetes.io/tls" and set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert ca_secret["data"]["tls.crt"] == tls["data"]["ca.crt"]
    bundles = {h["clientConfig"]["caBundle"] for h in webhooks(docs)}
    assert bundles == {tls["data"]["ca.crt"]}, "caBundle, Secret and CA differ"
    ca, leaf = _x509(tls["data"]["ca.crt"]), _x509(tls["data"]["tls.crt"])
    hosts = [
        FULLNAME,
        f"{FULLNAME}.{NAMESPACE}",
        f"{FULLNAME}.{NAMESPACE}.svc",
        f"{FULLNAME}.{NAMESPACE}.svc.cluster.local",
    ]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == set(hosts)
    verifier = (
        PolicyBuilder().store(Store([ca])).build_server_verifier(DNSName(f"{FULLNAME}.{NAMESPACE}.svc"))
    )
    verifier.verify(leaf, [])
    dep = one(docs, "Deployment")
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"]
    assert vol["secret"]["secretName"] == f"{FULLNAME}-tls"
    assert {i["key"] for i in vol["secret"]["items"]} == {"tls.crt", "tls.key"}  # the CA key never mounted


def test_self_signed_ca_is_reused_across_upgrades():
    text = (CHART / "templates" / "webhooks.yaml").read_text()
    assert re.search(r'lookup "v1" "Secret" \$ns \(printf "%s-ca" \$fullname\)', text)
    assert "buildCustomCert" in text and "genCA" in text


def test_cert_manager_mode():
    docs = render(*values_args(CHART / "ci" / "certmanager-values.yaml"))
    assert not by_kind(docs, "Secret")
    certs = {c["metadata"]["name"]: c for c in by_kind(docs, "Certificate")}
    serving = certs[f"{FULLNAME}-serving"]
    assert serving["spec"]["secretName"] == f"{FULLNAME}-tls"
    assert (
        len(serving["spec"]["dnsNames"]) == 4 and f"{FULLNAME}.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    )
    assert "server auth" in serving["spec"]["usages"]
    assert certs[f"{FULLNAME}-ca"]["spec"]["isCA"] is True
    assert serving["spec"]["issuerRef"]["name"] == f"{FULLNAME}-ca"
    for kind in WEBHOOK_KINDS:
        cfg = one(docs, kind)
        assert (
            cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            == f"{NAMESPACE}/{FULLNAME}-serving"
        )
        assert all("caBundle" not in h["clientConfig"] for h in cfg["webhooks"])
    own = render(*values_args(CHART / "ci" / "certmanager-issuer-values.yaml"))
    assert not by_kind(own, "Issuer")
    (serving,) = by_kind(own, "Certificate")
    assert serving["spec"]["issuerRef"] == {
        "kind": "ClusterIssuer",
        "name": "internal-ca",
        "group": "cert-manager.io",
    }


def test_existing_secret_mode():
    values = yaml.safe_load((CHART / "ci" / "existing-secret-values.yaml").read_text())["certs"][
        "existingSecret"
    ]
    docs = render(*values_args(CHART / "ci" / "existing-secret-values.yaml"))
    assert not by_kind(docs, "Secret") and not by_kind(docs, "Certificate")
    assert {h["clientConfig"]["caBundle"] for h in webhooks(docs)} == {values["caBundle"]}
    _x509(values["caBundle"])  # a real certificate
    dep = one(docs, "Deployment")
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"]
    assert vol["secret"]["secretName"] == values["name"]
    with pytest.raises(RenderError, match="caBundle"):
        render("--set", "certs.mode=existingSecret", "--set", "certs.existingSecret.name=x")


def test_schema_rejects_unknown_and_bad_values():
    for args in (
        ["--set", "replicaCount=0"],
        ["--set", "certs.mode=vault"],
        ["--set", "webhooks.nope=1"],
        ["--set", "podAntiAffinity=maybe"],
        ["--set", "optOut.protected=true"],
        ["--set-json", 'policies={"bad/name": "x"}'],
    ):
        with pytest.raises(RenderError):
            render(*args)


# --------------------------------------------------------------------------- helm test pod


def test_helm_test_pod_talks_to_the_service_with_only_the_ca():
    docs = render()
    (pod,) = [
        d
        for d in by_kind(docs, "Pod")
        if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    ]
    spec = pod["spec"]
    (c,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["WEBHOOK_HOST"] == f"{FULLNAME}.{NAMESPACE}.svc"
    assert c["command"][0] == "python3"
    script = c["args"][0]
    compile(script, "helm-test", "exec")
    assert "/mutate" in script and "/validate" in script and "create_default_context(cafile=" in script
    (vol,) = spec["volumes"]
    assert vol["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert spec["automountServiceAccountToken"] is False


def test_helm_test_script_against_a_fake_webhook(tmp_path):
    """Run the pod's script for real against a local HTTPS server that answers like the webhook."""
    import http.server
    import ssl
    import threading

    from webhook.actions.certs import generate_self_signed

    docs = render()
    (pod,) = [
        d
        for d in by_kind(docs, "Pod")
        if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    ]
    script = pod["spec"]["containers"][0]["args"][0]
    ca, cert, key = generate_self_signed(["webhook.test.svc"], tmp_path)
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._send(200 if self.path == "/readyz" else 404, b"{}")

        def do_POST(self):
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, review["request"]["operation"], review["request"]["dryRun"]))
            response = {"uid": review["request"]["uid"], "allowed": True}
            if self.path == "/mutate":
                response |= {"patchType": "JSONPatch", "patch": base64.b64encode(b"[]").decode()}
            self._send(
                200,
                json.dumps(
                    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
                ).encode(),
            )

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # The pod resolves <svc>.<ns>.svc through cluster DNS; here a hosts-free
        # resolver shim points the name at the local server, and port 443 at its port.
        shim = (
            "import socket, urllib.request\n"
            f"_real = socket.create_connection\n"
            f"def _cc(addr, *a, **k):\n"
            f"    return _real(('127.0.0.1', {server.server_address[1]}) if addr[0] == 'webhook.test.svc' else addr, *a, **k)\n"
            "socket.create_connection = _cc\n"
        )
        env = {
            **os.environ,
            "WEBHOOK_HOST": "webhook.test.svc",
            "REVIEW_NAMESPACE": "default",
            "CA_BUNDLE": base64.b64encode(ca.read_bytes()).decode(),
        }
        out = subprocess.run(
            [sys.executable, "-c", shim + script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "uid echoed" in out.stdout
        assert seen == [("/mutate", "CREATE", True), ("/validate", "CREATE", True)]

        # A webhook that does not echo the uid fails the test pod.

        def wrong_uid(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self._send(
                200,
                json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": {"uid": "nope", "allowed": True},
                    }
                ).encode(),
            )

        Handler.do_POST = wrong_uid
        bad = subprocess.run(
            [sys.executable, "-c", shim + script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 1 and "uid" in bad.stdout
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_test_script(script: str, port: int, ca: Path, *, client_auth: bool) -> subprocess.CompletedProcess:
    """The helm test pod's script, with webhook.test.svc:443 pointed at 127.0.0.1:port."""
    shim = (
        "import socket\n"
        "_real = socket.create_connection\n"
        "def _cc(addr, *a, **k):\n"
        f"    return _real(('127.0.0.1', {port}) if addr[0] == 'webhook.test.svc' else addr, *a, **k)\n"
        "socket.create_connection = _cc\n"
    )
    env = {
        **os.environ,
        "WEBHOOK_HOST": "webhook.test.svc",
        "REVIEW_NAMESPACE": "default",
        "CA_BUNDLE": base64.b64encode(ca.read_bytes()).decode(),
        "CLIENT_AUTH": "true" if client_auth else "",
    }
    return subprocess.run(
        [sys.executable, "-c", shim + script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _client_certificate(folder: Path, common_name: str) -> tuple[Path, Path, Path]:
    """A client CA and a client certificate (clientAuth EKU) it signed, as the API server would present."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "API server client CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    folder.mkdir()
    paths = folder / "ca.crt", folder / "client.crt", folder / "client.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def test_helm_test_script_against_the_real_server_with_client_auth(tmp_path):
    """clientAuth: the test pod has no client certificate, so it checks the serving certificate and that
    `tenantguard serve --client-ca` refuses it; against a server that does not ask, it fails."""
    import ssl
    import time
    import urllib.request

    from webhook.actions.certs import generate_self_signed

    docs = render(*values_args(CLIENT_AUTH_VALUES))
    (pod,) = [d for d in by_kind(docs, "Pod") if is_hook(d)]
    (c,) = pod["spec"]["containers"]
    script = c["args"][0]
    assert {"name": "CLIENT_AUTH", "value": "true"} in c["env"]
    ca, cert, key = generate_self_signed(["webhook.test.svc", "localhost"], tmp_path / "serving")
    client_ca, client_cert, client_key = _client_certificate(
        tmp_path / "client", "kube-apiserver-webhook-client"
    )
    chart_args = container_args(docs)
    (allowed,) = flag_values(chart_args, "--client-name")

    def serve(*extra: str) -> tuple[subprocess.Popen, int]:
        port = _free_port()
        cmd = [str(TENANTGUARD), "serve", "--policies", str(STARTER), "--cert", str(cert), "--key", str(key)]
        cmd += ["--host", "127.0.0.1", "--port", str(port), *extra]
        assert TENANTGUARD.is_file(), f"{TENANTGUARD} is missing: pip install -e . in this venv"
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), port

    def wait_ready(port: int, ctx: ssl.SSLContext, proc: subprocess.Popen) -> None:
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://localhost:{port}/readyz", context=ctx, timeout=2
                ) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "the server did not become ready"
            time.sleep(0.2)

    # The server as the chart starts it: --client-ca and --client-name from the values.
    proc, port = serve("--client-ca", str(client_ca), "--client-name", allowed)
    try:
        with_cert = ssl.create_default_context(cafile=str(ca))
        with_cert.load_cert_chain(str(client_cert), str(client_key))
        wait_ready(port, with_cert, proc)  # the API server's certificate gets answers
        out = _run_test_script(script, port, ca, client_auth=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "refuses reviews without a client certificate" in out.stdout
        # A serving certificate from another CA is still caught.
        other_ca, _, _ = generate_self_signed(["webhook.test.svc"], tmp_path / "other")
        wrong = _run_test_script(script, port, other_ca, client_auth=True)
        assert (
            wrong.returncode == 1 and "does not present a certificate from the configured CA" in wrong.stdout
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # Control: a server that asks for no client certificate fails the clientAuth test.
    proc, port = serve()
    try:
        wait_ready(port, ssl.create_default_context(cafile=str(ca)), proc)
        out = _run_test_script(script, port, ca, client_auth=True)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "clientAuth is not enforced" in out.stdout
        # Without clientAuth the same script sends real reviews to the same server and passes.
        plain = _run_test_script(script, port, ca, client_auth=False)
        assert plain.returncode == 0, plain.stdout + plain.stderr
        assert "answers AdmissionReviews" in plain.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_k8s_tools_is_the_shared_script():
    """tools/k8s-tools is a verbatim copy of the team's shared installer (checked where shared/ is present)."""
    ours = ROOT / "tools" / "k8s-tools"
    assert ours.is_file() and os.access(ours, os.X_OK)
    shared = ROOT.parent / "shared" / "tools" / "k8s-tools"
    if shared.is_file():
        assert ours.read_bytes() == shared.read_bytes(), "tools/k8s-tools drifted from shared/tools/k8s-tools"


# --------------------------------------------------------------------------- CEL rules: kinds and VAPs


EXTRA_KINDS = [
    {"apiGroups": [""], "resources": ["services", "persistentvolumeclaims"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "operations": ["CREATE"]},
    {"apiGroups": ["autoscaling"], "apiVersions": ["v2"], "resources": ["horizontalpodautoscalers"]},
]


def test_extra_kinds_add_validating_rules_for_the_kinds_cel_rules_name():
    docs = render("--set-json", f"webhooks.extraKinds={json.dumps(EXTRA_KINDS)}")
    validate = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
    rules = validate["rules"]
    assert rule_matches(rules, "", "services", "", "CREATE") and rule_matches(rules, "", "services", "", "UPDATE")
    assert rule_matches(rules, "", "persistentvolumeclaims", "", "UPDATE")
    assert rule_matches(rules, "networking.k8s.io", "ingresses", "", "CREATE")
    assert not rule_matches(rules, "networking.k8s.io", "ingresses", "", "UPDATE")
    assert not rule_matches(rules, "", "services", "", "DELETE")
    [hpa] = [r for r in rules if r["apiGroups"] == ["autoscaling"]]
    assert hpa == {"apiGroups": ["autoscaling"], "apiVersions": ["v2"], "operations": ["CREATE", "UPDATE"],
                   "resources": ["horizontalpodautoscalers"], "scope": "Namespaced"}
    # validation only: defaults never apply to these kinds
    mutate = one(docs, "MutatingWebhookConfiguration")["webhooks"][0]["rules"]
    assert not rule_matches(mutate, "", "services", "", "CREATE")
    # what was there stays, and the configuration is valid Kubernetes
    assert rule_matches(rules, "", "pods", "", "CREATE") and rule_matches(rules, "apps", "deployments", "", "UPDATE")
    for doc in by_kind(docs, "ValidatingWebhookConfiguration"):
        k8s_schema.assert_valid(doc)
    assert "extraKinds" not in json.dumps(render())  # none by default


@pytest.mark.parametrize("entry,message", [
    ({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}, "leases must never be intercepted"),
    ({"apiGroups": [""], "resources": ["nodes/status"]}, "nodes/status must never be intercepted"),
    ({"apiGroups": [""], "resources": ["events"]}, "events must never be intercepted"),
    ({"apiGroups": ["coordination.k8s.io"], "resources": ["other"]}, "coordination.k8s.io group"),
    ({"apiGroups": ["*"], "resources": ["services"]}, "apiGroups"),
    ({"apiGroups": [""], "resources": ["*"]}, "resources"),
    ({"apiGroups": [""], "resources": ["services"], "operations": ["DELETE"]}, "operations"),
])
def test_extra_kinds_never_reach_leases_nodes_events_or_a_wildcard(entry, message):
    with pytest.raises(RenderError, match=re.escape(message)):
        render("--set-json", f"webhooks.extraKinds=[{json.dumps(entry)}]")


def test_vap_values_rendered_by_the_cli_install_the_cel_rules(tmp_path):
    from tests.conftest import run_cli

    policy = {
        "apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
        "spec": {"namespaces": ["shop"], "rules": {"cel": [
            {"name": "no-latest", "validations": [
                {"expression": "object.spec.containers.all(c, !c.image.endsWith(':latest'))"}]},
            {"name": "no-nodeport", "match": {"kinds": ["Service"]},
             "validations": [{"expression": "object.spec.type != 'NodePort'"}]},
        ]}},
    }
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(policy))
    out = run_cli("render", "--vap", "--policies", str(tmp_path / "shop.yaml"), "--output", "values")
    assert out.code == 0, out.err
    values = tmp_path / "vap-values.yaml"
    values.write_text(out.out)
    docs = render("-f", str(values))
    policies = {d["metadata"]["name"]: d for d in by_kind(docs, "ValidatingAdmissionPolicy")}
    bindings = {d["metadata"]["name"]: d for d in by_kind(docs, "ValidatingAdmissionPolicyBinding")}
    ours = {"tenantguard-shop-no-latest", "tenantguard-shop-no-latest-controllers",
            "tenantguard-shop-no-latest-cronjobs", "tenantguard-shop-no-nodeport"}
    assert ours <= set(policies) and ours <= set(bindings)
    assert f"{FULLNAME}-opt-out-label" in policies  # the chart's own policy stays
    for name in ours:
        for doc in (policies[name], bindings[name]):
            k8s_schema.assert_valid(doc)
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "Helm" and labels["app.kubernetes.io/part-of"] == \
                "tenantguard"
        assert bindings[name]["spec"]["policyName"] == name
        assert bindings[name]["spec"]["validationActions"] == ["Deny"]
    # off by default, and only policies and bindings are accepted
    assert {d["metadata"]["name"] for d in by_kind(render(), "ValidatingAdmissionPolicy")} == \
        {f"{FULLNAME}-opt-out-label"}
    with pytest.raises(RenderError):
        render("--set-json", 'vap={"enabled": true, "objects": [{"apiVersion": "v1", "kind": "ConfigMap", '
                             '"metadata": {"name": "x"}, "spec": {}}]}')


# --------------------------------------------------------------------------- policies from the cluster, status, PolicyReports

CLUSTER_VALUES = CHART / "ci" / "cluster-policies-values.yaml"
UPSTREAM_POLICY_REPORT_CRD = ROOT / "tests" / "data" / "upstream" / "wgpolicyk8s.io_policyreports.yaml"
WRITER = f"{FULLNAME}-writer"
LEADER_ELECTION = f"{FULLNAME}-leader-election"
WRITING_FLAGS = ("--policies-from", "--lease-namespace", "--lease-name", "--api-writes-per-second",
                 "--background-audit-interval", "--report-max-results", "--report-clean")
MODES = {
    "cluster": ("--set", "policies.source=cluster"),
    "audit": ("--set", "backgroundAudit.enabled=true"),
    "both": ("-f", str(CLUSTER_VALUES)),
}


def named(docs: list[dict], kind: str, name: str) -> dict | None:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) <= 1
    return found[0] if found else None


def container(docs: list[dict]) -> dict:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def grants(role: dict) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


class Authorizer:
    """Kubernetes RBAC over the rendered objects, for the chart's ServiceAccount: a ClusterRoleBinding grants
    its ClusterRole everywhere, a RoleBinding its Role in its own namespace; a rule with resourceNames allows
    only requests naming one of them (never create or list)."""

    def __init__(self, docs: list[dict]):
        sa = one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
        subject = {"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}
        roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
                 for d in docs if d["kind"] in ("ClusterRole", "Role")}
        self.cluster_rules: list[dict] = []
        self.namespace_rules: dict[str, list[dict]] = {}
        for binding in docs:
            if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding") or subject not in binding["subjects"]:
                continue
            ref = binding["roleRef"]
            namespace = binding["metadata"].get("namespace")
            role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])]
            if binding["kind"] == "ClusterRoleBinding":
                self.cluster_rules += role["rules"]
            else:
                self.namespace_rules.setdefault(namespace, []).extend(role["rules"])

    def allows(self, group: str, resource: str, verb: str, namespace: str | None = None,
               name: str | None = None) -> bool:
        rules = self.cluster_rules + (self.namespace_rules.get(namespace, []) if namespace else [])
        return any(
            group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
            and ("resourceNames" not in rule or (name is not None and name in rule["resourceNames"]))
            for rule in rules
        )


# The calls the server makes to the API server, by code path: (module, client method) -> the requests it
# sends as (group, resource, verb, where). where: "cluster" (a cluster-scoped request or a list across every
# namespace), "each namespace" (the namespace of a report: any), "lease" (the Lease, by name, in the release
# namespace), "lease namespace" (the Lease's namespace, no name: create).
CLUSTER_VIEW = "webhook/views/watched.py"
POLICY_OBJECTS = "webhook/views/policy_objects.py"
POLICY_STATUS = "webhook/server/policy_status.py"
LEADER = "webhook/server/leader.py"
BACKGROUND_AUDIT = "webhook/server/background_audit.py"
SNAPSHOT = "webhook/views/snapshot.py"
SERVER_CALLS: dict[tuple[str, str], list[tuple[str, str, str, str]]] = {
    # the cluster view's reflectors (list, then watch=True from its resourceVersion)
    (CLUSTER_VIEW, "list_pod_for_all_namespaces"): [("", "pods", v, "cluster") for v in ("list", "watch")],
    (CLUSTER_VIEW, "list_namespace"): [("", "namespaces", v, "cluster") for v in ("list", "watch")],
    (CLUSTER_VIEW, "list_resource_quota_for_all_namespaces"): [
        ("", "resourcequotas", v, "cluster") for v in ("list", "watch")],
    (CLUSTER_VIEW, "list_network_policy_for_all_namespaces"): [
        ("networking.k8s.io", "networkpolicies", v, "cluster") for v in ("list", "watch")],
    # WatchedPolicies' reflectors and read_policy_objects: list_cluster_custom_object(GROUP, VERSION, plural)
    (POLICY_OBJECTS, "list_cluster_custom_object"): [
        ("tenantguard.io", plural, v, "cluster") for plural in ("tenantpolicies", "clusterpolicies")
        for v in ("list", "watch")],
    # StatusWriter._patch: a merge patch of /status
    (POLICY_STATUS, "patch_cluster_custom_object_status"): [
        ("tenantguard.io", "tenantpolicies/status", "patch", "cluster"),
        ("tenantguard.io", "clusterpolicies/status", "patch", "cluster")],
    # LeaderElector._try_acquire_or_renew and _release
    (LEADER, "read_namespaced_lease"): [("coordination.k8s.io", "leases", "get", "lease")],
    (LEADER, "create_namespaced_lease"): [("coordination.k8s.io", "leases", "create", "lease namespace")],
    (LEADER, "patch_namespaced_lease"): [("coordination.k8s.io", "leases", "patch", "lease")],
    # BackgroundAudit._existing (our reports, every namespace) and _reconcile
    (BACKGROUND_AUDIT, "list_cluster_custom_object"): [("wgpolicyk8s.io", "policyreports", "list", "cluster")],
    (BACKGROUND_AUDIT, "create_namespaced_custom_object"): [
        ("wgpolicyk8s.io", "policyreports", "create", "each namespace")],
    (BACKGROUND_AUDIT, "replace_namespaced_custom_object"): [
        ("wgpolicyk8s.io", "policyreports", "update", "each namespace")],
    (BACKGROUND_AUDIT, "delete_namespaced_custom_object"): [
        ("wgpolicyk8s.io", "policyreports", "delete", "each namespace")],
    # take_snapshot, the background audit's read of the cluster (paged lists)
    (SNAPSHOT, "list_namespace"): [("", "namespaces", "list", "cluster")],
    (SNAPSHOT, "list_network_policy_for_all_namespaces"): [("networking.k8s.io", "networkpolicies", "list", "cluster")],
    (SNAPSHOT, "list_resource_quota_for_all_namespaces"): [("", "resourcequotas", "list", "cluster")],
    (SNAPSHOT, "list_pod_for_all_namespaces"): [("", "pods", "list", "cluster")],
}
# in those modules, but never called by the server: take_snapshot(owners=True) is `tenantguard audit`'s
NOT_SERVER_CALLS = {(SNAPSHOT, "list_replica_set_for_all_namespaces"), (SNAPSHOT, "list_job_for_all_namespaces")}
MODULES_BY_MODE = {
    "files": (CLUSTER_VIEW,),
    "cluster": (CLUSTER_VIEW, POLICY_OBJECTS, POLICY_STATUS, LEADER),
    "audit": (CLUSTER_VIEW, LEADER, BACKGROUND_AUDIT, SNAPSHOT),
    "both": (CLUSTER_VIEW, POLICY_OBJECTS, POLICY_STATUS, LEADER, BACKGROUND_AUDIT, SNAPSHOT),
}


def client_calls(module: str) -> set[str]:
    """The kubernetes client API methods a module's source names."""
    from kubernetes import client

    methods = {
        m for api in (client.CoreV1Api, client.AppsV1Api, client.BatchV1Api, client.NetworkingV1Api,
                      client.CoordinationV1Api, client.CustomObjectsApi)
        for m in dir(api) if re.match(r"(list|read|create|replace|patch|delete|connect)_", m)
    }
    return set(re.findall(r"\.([a-z_]+)\b", (ROOT / module).read_text())) & methods


def test_the_call_table_is_every_api_call_of_those_modules():
    """A new client call in any of these modules fails here until it is in SERVER_CALLS (and the RBAC has it)."""
    for module in {m for modules in MODULES_BY_MODE.values() for m in modules}:
        found = {(module, method) for method in client_calls(module)}
        assert found, module
        assert found - NOT_SERVER_CALLS == {k for k in SERVER_CALLS if k[0] == module}, module
    # the background audit reads with take_snapshot(api): no owners, so no ReplicaSets or Jobs
    import inspect

    from webhook.server.background_audit import BackgroundAudit
    from webhook.views.snapshot import take_snapshot

    assert inspect.signature(BackgroundAudit.__init__).parameters["read"].default is take_snapshot
    assert inspect.signature(take_snapshot).parameters["owners"].default is False
    assert "self._read, self._api)" in inspect.getsource(BackgroundAudit.run_once)


@pytest.mark.parametrize("mode", ["files", "cluster", "audit", "both"])
def test_rbac_allows_every_call_the_server_makes_and_little_more(mode):
    docs = render(*MODES.get(mode, ()))
    authorizer = Authorizer(docs)
    lease = flag_values(container_args(docs), "--lease-name")
    calls = [(path, call) for path, calls in SERVER_CALLS.items() if path[0] in MODULES_BY_MODE[mode]
             for call in calls]
    for (module, method), (group, resource, verb, where) in calls:
        if where == "lease":
            allowed = authorizer.allows(group, resource, verb, NAMESPACE, lease[0])
        elif where == "lease namespace":
            allowed = authorizer.allows(group, resource, verb, NAMESPACE)
        elif where == "each namespace":
            allowed = all(authorizer.allows(group, resource, verb, ns, "tenantguard")
                          for ns in ("team-a", "default", NAMESPACE))
        else:
            allowed = authorizer.allows(group, resource, verb)
        assert allowed, f"{module} {method}: {verb} {group}/{resource} ({where}) is not allowed"
    # and nothing else, but `get` of what is listed (kubectl-style reads, as the cluster view always had)
    used = {(g, r, v) for _, (g, r, v, _) in calls}
    granted = {(g, r, v) for rule in authorizer.cluster_rules + sum(authorizer.namespace_rules.values(), [])
               for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    extra = {(g, r, v) for g, r, v in granted - used if not (v == "get" and (g, r, "list") in used)}
    assert not extra, extra
    # the Lease: only in the release namespace, get/patch only of our Lease
    assert not authorizer.allows("coordination.k8s.io", "leases", "patch", "kube-system", lease and lease[0])
    if lease:
        assert not authorizer.allows("coordination.k8s.io", "leases", "patch", NAMESPACE, "kube-scheduler")
        assert not authorizer.allows("coordination.k8s.io", "leases", "create")  # not cluster-wide


def test_the_rbac_authorizer_has_teeth():
    docs = render("-f", str(CLUSTER_VALUES))
    authorizer = Authorizer(docs)
    assert authorizer.allows("", "pods", "list")
    assert not authorizer.allows("", "pods", "delete")
    assert not authorizer.allows("", "secrets", "get", NAMESPACE)
    assert not authorizer.allows("tenantguard.io", "tenantpolicies", "patch")  # status only
    assert not authorizer.allows("tenantguard.io", "tenantpolicies", "update")
    assert authorizer.allows("coordination.k8s.io", "leases", "get", NAMESPACE, "tenantguard-ci-leader")
    assert not authorizer.allows("coordination.k8s.io", "leases", "get", NAMESPACE)  # unnamed: no
    unbound = [d for d in docs if d["kind"] != "RoleBinding"]
    assert not Authorizer(unbound).allows("coordination.k8s.io", "leases", "get", NAMESPACE, "tenantguard-ci-leader")


def test_default_install_writes_nothing_reads_policy_files_and_has_no_lease():
    docs = render()
    c = container(docs)
    args = c["args"]
    assert args[:3] == ["serve", "--policies", "/etc/tenantguard/policies"]
    assert not set(WRITING_FLAGS) & set(args)
    assert "env" not in c
    assert any(m["mountPath"] == "/etc/tenantguard/policies" for m in c["volumeMounts"])
    assert named(docs, "ConfigMap", f"{FULLNAME}-policies") is not None
    assert not by_kind(docs, "Role") and not by_kind(docs, "RoleBinding")
    assert named(docs, "ClusterRole", WRITER) is None and named(docs, "ClusterRoleBinding", WRITER) is None
    assert not by_kind(docs, "CustomResourceDefinition")
    assert "tenantguard.io" not in json.dumps(one(docs, "ClusterRole")["rules"])


def test_policies_from_the_cluster_args_env_rbac_and_no_configmap():
    docs = render(*MODES["cluster"])
    c = container(docs)
    args = c["args"]
    assert flag_values(args, "--policies-from") == ["cluster"] and "--policies" not in args
    assert flag_values(args, "--lease-namespace") == [NAMESPACE]
    assert flag_values(args, "--lease-name") == [f"{FULLNAME}-leader"]
    assert flag_values(args, "--api-writes-per-second") == ["5"]
    assert "--in-cluster" in args and "--background-audit-interval" not in args
    # the Lease holder's identity and namespace from the downward API (webhook.server.leader, cluster_duties)
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # no policy files: no ConfigMap, nothing mounted
    assert named(docs, "ConfigMap", f"{FULLNAME}-policies") is None
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert "policies" not in {v["name"] for v in pod["volumes"]}
    assert "/etc/tenantguard/policies" not in {m["mountPath"] for m in c["volumeMounts"]}
    # read the policies (the cluster view's role), write their status only, the Lease in our namespace
    assert grants(named(docs, "ClusterRole", f"{FULLNAME}-cluster-view")) >= {
        ("tenantguard.io", r, v) for r in ("tenantpolicies", "clusterpolicies") for v in ("get", "list", "watch")}
    assert grants(named(docs, "ClusterRole", WRITER)) == {
        ("tenantguard.io", "tenantpolicies/status", "patch"), ("tenantguard.io", "clusterpolicies/status", "patch")}
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert grants(role) == {("coordination.k8s.io", "leases", v) for v in ("create", "get", "patch")}
    assert [r.get("resourceNames") for r in role["rules"] if "patch" in r["verbs"]] == [[f"{FULLNAME}-leader"]]
    binding = one(docs, "RoleBinding")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEADER_ELECTION}


def test_background_audit_flags_and_rbac_with_policy_files():
    docs = render("--set", "backgroundAudit.enabled=true")
    c = container(docs)
    args = c["args"]
    assert flag_values(args, "--policies") == ["/etc/tenantguard/policies"] and "--policies-from" not in args
    assert flag_values(args, "--background-audit-interval") == ["600"]
    assert flag_values(args, "--report-max-results") == ["100"]
    assert "--report-clean" not in args
    assert flag_values(args, "--lease-name") == [f"{FULLNAME}-leader"]
    assert {"POD_NAME", "POD_NAMESPACE"} <= {e["name"] for e in c["env"]}
    assert named(docs, "ConfigMap", f"{FULLNAME}-policies") is not None
    assert grants(named(docs, "ClusterRole", WRITER)) == {
        ("wgpolicyk8s.io", "policyreports", v) for v in ("get", "list", "create", "update", "delete")}
    assert "tenantguard.io" not in json.dumps(named(docs, "ClusterRole", f"{FULLNAME}-cluster-view"))
    assert one(docs, "Role") and one(docs, "RoleBinding")
    tuned = container_args(render("--set", "backgroundAudit.enabled=true", "--set",
                                  "backgroundAudit.intervalSeconds=90", "--set", "backgroundAudit.maxResults=7",
                                  "--set", "backgroundAudit.includeClean=true", "--set-json",
                                  "apiWritesPerSecond=0.5", "--set", "leaderElection.leaseName=my-lease"))
    assert flag_values(tuned, "--background-audit-interval") == ["90"]
    assert flag_values(tuned, "--report-max-results") == ["7"] and "--report-clean" in tuned
    assert flag_values(tuned, "--api-writes-per-second") == ["0.5"]
    assert flag_values(tuned, "--lease-name") == ["my-lease"]


def test_extra_env_is_kept_next_to_the_downward_api():
    extra = [{"name": "TZ", "value": "UTC"}]
    plain = container(render("--set-json", f"extraEnv={json.dumps(extra)}"))
    assert plain["env"] == extra
    both = container(render("-f", str(CLUSTER_VALUES), "--set-json", f"extraEnv={json.dumps(extra)}"))
    assert [e["name"] for e in both["env"]] == ["POD_NAME", "POD_NAMESPACE", "TZ"]


@pytest.mark.parametrize("mode", ["cluster", "audit", "both"])
def test_the_server_elects_a_leader_in_our_namespace_with_the_chart_arguments(mode, monkeypatch):
    """The chart's arguments and env make the server write (leader election) with the Lease the Role names."""
    import argparse

    from webhook.cli import serve
    from webhook.server.cluster_duties import lease_namespace
    from webhook.server.leader import default_identity
    from webhook.server.settings import ServerSettings

    docs = render(*MODES[mode])
    c = container(docs)
    parser = argparse.ArgumentParser(exit_on_error=False)
    serve.add_arguments(parser)
    args = parser.parse_args(c["args"][1:])
    assert serve._flag_errors(args) == []
    settings = ServerSettings(policies=tuple(args.policies), cert="c", key="k", in_cluster=args.in_cluster,
                              policies_from=args.policies_from, lease_namespace=args.lease_namespace,
                              lease_name=args.lease_name, audit_interval=args.background_audit_interval,
                              report_max_results=args.report_max_results, report_clean=args.report_clean,
                              write_rate=args.api_writes_per_second)
    assert settings.elects_leader
    assert settings.policies_from_cluster == (mode != "audit")
    assert (settings.audit_interval > 0) == (mode != "cluster")
    role = one(docs, "Role")
    assert lease_namespace(settings) == role["metadata"]["namespace"] == NAMESPACE
    (named_rule,) = [r for r in role["rules"] if "resourceNames" in r]
    assert named_rule["resourceNames"] == [settings.lease_name]
    # the identity is the pod's name (downward API) and the process id
    monkeypatch.setenv("POD_NAME", "ci-tenantguard-abc12")
    assert default_identity() == f"ci-tenantguard-abc12_{os.getpid()}"


@pytest.mark.parametrize("mode", ["cluster", "audit", "both", "crd"])
def test_policy_source_and_audit_renders_are_valid_kubernetes_1_35(mode, schemas):
    args = MODES.get(mode, ("--set", "backgroundAudit.installPolicyReportCRD=true"))
    docs = render(*args)
    problems = {f"{d['kind']}/{d['metadata']['name']}": schema_errors(schemas, d) for d in docs}
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=2)
    for d in docs:
        k8s_schema.assert_valid(d) if not d["apiVersion"].startswith("cert-manager.io/") else None
    assert_never_intercepts(docs, ALWAYS_EXCLUDED)


@pytest.mark.parametrize("extra", [
    (),
    ("--set", "backgroundAudit.installPolicyReportCRD=true"),
    ("--set", "policies.source=cluster", "--set", "backgroundAudit.enabled=true", "--set", "rbac.create=false"),
])
def test_helm_lint_strict_with_the_new_values(extra):
    out = run_helm("lint", "--strict", str(CHART), "-f", str(CLUSTER_VALUES), *extra, "--namespace", NAMESPACE,
                   "--kube-version", KUBE_VERSION)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


def test_the_ci_values_file_exercises_cluster_policies_and_the_background_audit():
    assert CLUSTER_VALUES in CI_VALUES  # so every per-values-file test (lint, schema, server arguments) runs on it
    values = yaml.safe_load(CLUSTER_VALUES.read_text())
    assert writes_to_the_cluster(values) and values["policies"]["source"] == "cluster"
    assert values["backgroundAudit"]["enabled"] is True
    assert CLUSTER_VALUES not in READ_ONLY_VALUES


def test_our_pods_pass_our_own_restricted_policy_with_cluster_policies(tmp_path):
    test_our_pods_pass_our_own_restricted_policy(CLUSTER_VALUES.name, tmp_path)


def test_policy_report_crd_is_the_upstream_document_and_opt_in():
    assert not by_kind(render(), "CustomResourceDefinition")
    assert not by_kind(render("--set", "backgroundAudit.enabled=true"), "CustomResourceDefinition")
    (crd,) = by_kind(render("--set", "backgroundAudit.installPolicyReportCRD=true"), "CustomResourceDefinition")
    upstream = yaml.safe_load(UPSTREAM_POLICY_REPORT_CRD.read_text())
    meta = crd["metadata"]
    assert meta.pop("annotations") == {"helm.sh/resource-policy": "keep"}  # other tools' reports live in it
    assert meta.pop("labels")["app.kubernetes.io/managed-by"] == "Helm"
    assert crd == upstream
    assert "namespace" not in meta  # cluster-scoped
    # what the background audit writes is what the CRD serves
    from webhook.core.policy_report import API_VERSION
    from webhook.server.background_audit import REPORT_PLURAL

    assert API_VERSION == f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
    assert crd["spec"]["names"]["plural"] == REPORT_PLURAL and crd["spec"]["scope"] == "Namespaced"


@pytest.mark.parametrize("args,message", [
    (("--set", "policies.source=cluster", "--set", "clusterView.enabled=false"), "needs clusterView.enabled=true"),
    (("--set", "backgroundAudit.enabled=true", "--set", "clusterView.enabled=false"),
     "needs clusterView.enabled=true"),
    (("--set", "policies.source=cluster", "--set", "demoPolicies.enabled=true"), "demoPolicies are policy files"),
    (("--set", "policies.source=cluster", "--set", "policies.team-x=kind: ClusterPolicy"),
     "policies.team-x is a policy file"),
])
def test_what_cannot_work_is_refused_with_a_reason(args, message):
    with pytest.raises(RenderError, match=re.escape(message)):
        render(*args)


@pytest.mark.parametrize("args", [
    ("--set", "policies.source=git"),
    ("--set", "backgroundAudit.intervalSeconds=5"),
    ("--set", "backgroundAudit.maxResults=0"),
    ("--set", "backgroundAudit.every=10"),
    ("--set-json", "apiWritesPerSecond=0"),
    ("--set", "leaderElection.leaseName=Not_A_Name"),
    ("--set", "leaderElection.renew=1"),
])
def test_schema_rejects_bad_policy_source_audit_and_lease_values(args):
    with pytest.raises(RenderError):
        render(*args)


def test_policies_source_is_not_a_policy_file_and_the_starter_stays_out_of_cluster_mode(tmp_path):
    files = named(render("--set", "policies.source=files"), "ConfigMap", f"{FULLNAME}-policies")
    assert files is not None and set(files["data"]) == {"cluster-starter.yaml"}  # no source.yaml
    # a file that happens to be called "source" still loads, spelled with its extension
    extra = named(render("--set", r"policies.source\.yaml=kind: ClusterPolicy"), "ConfigMap",
                  f"{FULLNAME}-policies")
    assert set(extra["data"]) == {"cluster-starter.yaml", "source.yaml"}
    notes = install_notes("-f", str(CLUSTER_VALUES), tmp_path=tmp_path)
    assert "Policies: the cluster's TenantPolicy and ClusterPolicy objects" in notes
    assert "ConfigMap" not in notes and "Policies loaded" not in notes
    assert "tenantguard/tenantguard-ci-leader" in notes
    assert "kubectl get policyreports -A" in notes and "installPolicyReportCRD=true" in notes
    plain = install_notes(tmp_path=tmp_path)
    assert "Lease" not in plain and "PolicyReport" not in plain


def test_no_rbac_objects_when_rbac_create_is_false():
    docs = render("-f", str(CLUSTER_VALUES), "--set", "rbac.create=false")
    assert not [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    assert flag_values(container_args(docs), "--lease-name") == ["tenantguard-ci-leader"]


CEL_VALUES = CHART / "ci" / "cel-values.yaml"


def test_the_cel_values_file_is_what_the_cli_renders_and_its_bindings_skip_what_the_webhooks_skip(tmp_path):
    assert CEL_VALUES in CI_VALUES  # so every per-values-file test (lint, schema, exclusions) runs on it
    docs = render("-f", str(CEL_VALUES), "--set-json", 'webhooks.namespaceSelector.excludeNamespaces=["monitoring"]')
    [configmap] = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == f"{FULLNAME}-policies"]
    folder = extract_policies(configmap, tmp_path / "policies")
    assert tenantguard("lint", "--strict", str(folder), cwd=tmp_path).returncode == 0
    # vap.objects is the CLI's output for these very policies (no drift between the two)
    out = tenantguard("render", "--vap", "--policies", str(folder), "--output", "values", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["vap"] == yaml.safe_load(CEL_VALUES.read_text())["vap"]
    bindings = {d["metadata"]["name"]: d for d in by_kind(docs, "ValidatingAdmissionPolicyBinding")}
    cluster_wide = bindings["tenantguard-cel-baseline-no-latest"]["spec"]
    tenant = bindings["tenantguard-team-a-no-nodeport"]["spec"]
    assert cluster_wide["validationActions"] == ["Warn"] and tenant["validationActions"] == ["Deny"]
    for ns in (NAMESPACE, "kube-system", "monitoring"):
        labels = namespace_labels(ns, {"tenantguard.io/tenant": "team-a"})
        assert not selector_matches(cluster_wide["matchResources"]["namespaceSelector"], labels), ns
        assert not selector_matches(tenant["matchResources"]["namespaceSelector"], labels), ns
    assert selector_matches(cluster_wide["matchResources"]["namespaceSelector"], namespace_labels("shop"))
    assert selector_matches(tenant["matchResources"]["namespaceSelector"],
                            namespace_labels("team-a", {"tenantguard.io/tenant": "team-a"}))
    assert not selector_matches(tenant["matchResources"]["namespaceSelector"], namespace_labels("team-b"))
    # the Service rule's kind is intercepted by the validating webhook
    assert rule_matches(one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]["rules"], "", "services", "",
                        "CREATE")
