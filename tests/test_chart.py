"""The Helm chart, checked for real: helm lint/template, the Kubernetes 1.35 schema,
the safety properties (excluded namespaces, RBAC, failure policies), the certificate
modes, and our own `tenantguard dry-run` under Pod Security "restricted".

helm comes from .tools/bin (installed by .ci/chart-tools). Missing helm skips
these tests locally and fails them in CI (CI=true).
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
IN_CI = os.environ.get("CI") == "true"
FULLNAME = f"{RELEASE}-tenantguard"
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
ALWAYS_EXCLUDED = {NAMESPACE, "kube-system"}


# --------------------------------------------------------------------------- helm


def helm_path() -> Path:
    if HELM.is_file() and os.access(HELM, os.X_OK):
        return HELM
    if IN_CI:
        pytest.fail(f"{HELM} is missing: .ci/chart-tools must install helm before the tests run")
    pytest.skip(f"{HELM} not installed (run .ci/chart-tools)")


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


def test_webhook_rules_cover_pods_and_every_pod_controller():
    docs = render()
    validate = _rule_table(one(docs, "ValidatingWebhookConfiguration")["webhooks"][0])
    mutate = _rule_table(one(docs, "MutatingWebhookConfiguration")["webhooks"][0])
    controllers = POD_CONTROLLERS
    expected_validate = {
        ("", "pods"),
        ("", "pods/ephemeralcontainers"),
        ("networking.k8s.io", "networkpolicies"),
        *controllers,
    }
    assert set(validate) == expected_validate
    assert all(ops == {"CREATE", "UPDATE"} for ops in validate.values())
    # Mutation: no network policies; CREATE only where the pod spec is immutable; `kubectl debug`'s
    # ephemeral containers (an UPDATE of pods/ephemeralcontainers) get the security-context defaults.
    assert set(mutate) == {("", "pods"), ("", "pods/ephemeralcontainers"), *controllers}
    assert mutate[("", "pods")] == {"CREATE"} and mutate[("batch", "jobs")] == {"CREATE"}
    assert mutate[("", "pods/ephemeralcontainers")] == {"UPDATE"}
    assert all(mutate[k] == {"CREATE", "UPDATE"} for k in controllers - {("batch", "jobs")})


def test_metadata_only_pod_updates_skip_validation_by_default():
    validate = one(render(), "ValidatingWebhookConfiguration")["webhooks"][0]
    (cond,) = validate["matchConditions"]
    assert "object.spec != oldObject.spec" in cond["expression"]
    assert "request.subResource != ''" in cond["expression"]  # ephemeral containers always judged
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


def _dry_run_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("webhook.cli.dry_run") is not None


@pytest.mark.parametrize("values", ["default-values.yaml", "ha-values.yaml", "existing-secret-values.yaml"])
def test_our_pods_pass_our_own_restricted_policy(values, tmp_path):
    """The webhook Deployment and the helm test Pod pass `tenantguard dry-run` under podSecurity: restricted."""
    if not _dry_run_available():
        if IN_CI:
            pytest.fail("`tenantguard dry-run` (webhook.cli.dry_run) is missing")
        pytest.skip("`tenantguard dry-run` is not written yet")
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


def test_policy_configmap_from_shipped_files_values_and_set_file(tmp_path):
    docs = render(include_tests=False)
    cm = one(docs, "ConfigMap")
    shipped = {p.name: p.read_text() for p in (CHART / "policies").glob("*.yaml")}
    assert (cm.get("data") or {}) == shipped  # byte for byte
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
    assert with_file["team-x.yaml"] == extra.read_text()
    assert set(shipped) <= set(with_file)
    if shipped:
        name = min(shipped)
        excluded = (
            one(render("--set-json", f'shippedPolicies.exclude=["{name}"]'), "ConfigMap").get("data") or {}
        )
        assert name not in excluded


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

    from webhook.certs import generate_self_signed

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
