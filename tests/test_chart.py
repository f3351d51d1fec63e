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
        assert rule_matches(rules, "", "pods", "", "CREATE")  # the matcher has teeth


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


@values_files
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


@pytest.mark.parametrize("values", ["default-values.yaml", "ha-values.yaml", "existing-secret-values.yaml"])
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
    assert ds["allowed"] and not ds["violations"]
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
    assert {(v["policy"], v["rule"]) for v in denied["violations"]} == {("cluster-baseline", "podSecurity")}
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


def test_k8s_tools_is_the_shared_script():
    """tools/k8s-tools is a verbatim copy of the team's shared installer (checked where shared/ is present)."""
    ours = ROOT / "tools" / "k8s-tools"
    assert ours.is_file() and os.access(ours, os.X_OK)
    shared = ROOT.parent / "shared" / "tools" / "k8s-tools"
    if shared.is_file():
        assert ours.read_bytes() == shared.read_bytes(), "tools/k8s-tools drifted from shared/tools/k8s-tools"
