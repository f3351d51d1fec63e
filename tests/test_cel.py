"""CEL rules (spec.rules.cel): compile errors at load, the Kubernetes libraries, evaluation errors, the cost
bound, the bindings, the engine's skip logic, caching, lint and `render --vap`. The golden suites in
tests/golden/cel/ run the same rules through the core, the CLI and the HTTP server."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import k8s_schema
from tests.conftest import run_cli
from webhook.actions.lint import warnings_for
from webhook.actions.vap import glob_regex, render_vap
from webhook.core.cel import program as cel_program
from webhook.core.cel.analysis import PER_CALL_LIMIT, Sizes, bound, polynomial
from webhook.core.cel.library import new_env
from webhook.core.cel.program import CelCompileError, compile_rule, execution_env
from webhook.core.cel.rewrite import bind_variables, replace_roots
from webhook.core.decision import Status
from webhook.core.engine import evaluate
from webhook.core.plan import PolicySet
from webhook.core.request import AdmissionRequest
from webhook.core.validators.cel import CelRule
from webhook.policy.loader import PolicyError, SourceDoc, build_policy_set, load_policies
from webhook.server.answers import AnswerCache
from webhook.views.memory import InMemoryClusterState


def tenant(rules: list[dict[str, Any]], name: str = "shop", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": name},
            "spec": {"namespaces": [name], "rules": {"cel": rules}, **spec}}


def cluster(rules: list[dict[str, Any]], name: str = "base", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenantguard.io/v1alpha1", "kind": "ClusterPolicy", "metadata": {"name": name},
            "spec": {"rules": {"cel": rules}, **spec}}


def load(*docs: dict[str, Any]) -> PolicySet:
    return build_policy_set([SourceDoc(d, "policies/p.yaml", i) for i, d in enumerate(docs, 1)])


def rule(expression: str, name: str = "r", **extra: Any) -> dict[str, Any]:
    return {"name": name, "validations": [{"expression": expression, **extra.pop("validation", {})}], **extra}


def pod(name: str = "p", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "app:1"}], **spec}}


def judge(policies: PolicySet, obj: dict[str, Any], namespace: str = "shop", state: Any = None, **kw: Any):
    request = AdmissionRequest(obj=obj, namespace=namespace, **kw)
    return evaluate(request, policies, state if state is not None else InMemoryClusterState(), mutate=False)


def value(expression: str, **data: Any) -> Any:
    """Evaluate ``expression`` with the project's library (bindings as keyword arguments)."""
    env = new_env({name: __import__("cel_expr_python").cel.Type.DYN for name in data})
    result = env.compile(expression).eval(data=data)
    if result.type().name() == "ERROR":
        raise ValueError(result.value())
    return result.plain_value()


# --- compile errors at load -------------------------------------------------------------------------------


def test_syntax_and_type_errors_name_file_document_field_and_position(tmp_path: Path) -> None:
    policy = tenant([
        {"name": "a", "variables": [{"name": "images", "expression": "object.spec.containers.map(c, c.image"}],
         "validations": [{"expression": "true"}, {"expression": "1 + 'x' == 2"}]},
        {"name": "b", "validations": [{"expression": "size(object.spec.containers)"},
                                      {"expression": "true", "messageExpression": "42"},
                                      {"expression": "variables.missing"}]},
    ])
    path = tmp_path / "p.yaml"
    first = {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "x"},
             "spec": {"namespaces": ["x"]}}
    path.write_text(yaml.safe_dump_all([first, policy]))
    with pytest.raises(PolicyError) as caught:
        load_policies([path])
    errors = caught.value.errors
    where = f"{path}: document 2: spec.rules.cel"
    assert f"{where}[0].variables[0].expression: line 1, column 38: Syntax error: missing ')' at '<EOF>'" in errors
    assert f"{where}[0].validations[1].expression: line 1, column 3: found no matching overload for '_+_' " \
           "applied to '(int, string)'" in errors
    assert f"{where}[1].validations[0].expression: must evaluate to bool, not int" in errors
    assert f"{where}[1].validations[1].messageExpression: must evaluate to string, not int" in errors
    assert any(e.startswith(f"{where}[1].validations[2].expression: line 1, column 10: undeclared reference to "
                            "'variables.missing'") for e in errors)
    # the CLI: exit 2, every line on stderr
    result = run_cli("lint", str(path))
    assert result.code == 2 and "spec.rules.cel[0].variables[0].expression: line 1, column 38" in result.err


def test_schema_errors_of_cel_rules() -> None:
    cases = {
        "spec.rules.cel: CEL rule 'a' is defined twice": [rule("true", "a"), rule("true", "a")],
        "spec.rules.cel[0].match.kinds: unknown kind 'Lease'": [rule("true", match={"kinds": ["Lease"]})],
        "spec.rules.cel[0].variables[0].name: '1x' is not a CEL identifier": [
            rule("true", variables=[{"name": "1x", "expression": "1"}])],
        "spec.rules.cel[0].validations: list should have at least 1 item": [{"name": "r", "validations": []}],
        "spec.rules.cel[0].match.operations[0]: must be one of 'CREATE' or 'UPDATE' (got 'DELETE')": [
            rule("true", match={"operations": ["DELETE"]})],
        "spec.rules.cel[0].validations[0]: message is required when the expression contains line breaks": [
            rule("true &&\ntrue")],
    }
    for expected, rules in cases.items():
        with pytest.raises(PolicyError) as caught:
            load(tenant(rules))
        assert any(e.startswith(f"policies/p.yaml: document 1: {expected}") for e in caught.value.errors), \
            (expected, caught.value.errors)


def test_an_expression_whose_cost_cannot_be_bounded_is_a_load_error() -> None:
    nested = "object.spec.containers.all(a, object.spec.containers.all(b, object.spec.containers.all(c, " \
             "object.spec.containers.all(d, a.name != d.name || a == d))))"
    with pytest.raises(CelCompileError) as caught:
        compile_rule([], [], [(nested, None, None, None), ("lists.range(object.spec.replicas).size() > 0", None,
                                                          None, None)])
    fields = dict(caught.value.problems)
    assert "exceeds the limit of 1,000,000 per expression already for lists of 32 items" in \
        fields["validations[0].expression"]
    assert fields["validations[1].expression"] == \
        "lists.range() of a value that is not a constant cannot be bounded"
    # a constant range is fine
    compile_rule([], [], [("lists.range(3).size() == 3", None, None, None)])


# --- the Kubernetes libraries -----------------------------------------------------------------------------


@pytest.mark.parametrize("expression,expected", [
    ("quantity('1Gi') == quantity('1073741824')", True),
    ("quantity('500m').isLessThan(quantity('1'))", True),
    ("quantity('2Gi').isGreaterThan(quantity('2047Mi')) && !quantity('1Gi').isGreaterThan(quantity('1024Mi'))", True),
    ("quantity('1Mi').add(1).asInteger()", 1048577),
    ("quantity('1').add(quantity('500m')).compareTo(quantity('1.5'))", 0),
    ("quantity('1').sub(2).sign()", -1),
    ("quantity('2Ki').asInteger()", 2048),
    ("quantity('1.5').asApproximateFloat()", 1.5),
    ("quantity('0.1').add(quantity('0.2')) == quantity('300m')", True),  # exact, not floating point
    ("quantity('1.5').isInteger()", False),
    ("isQuantity('1x')", False),
    ("isQuantity('+1.5e3')", True),
    ("[1, 2, 3].isSorted() && !['b', 'a'].isSorted()", True),
    ("[1, 2, 3].sum() == 6 && [1.5, 2.0].sum() == 3.5 && [].sum() == 0", True),
    ("[3, 1, 2].min() + [3, 1, 2].max()", 4),
    ("[1, 2, 1].indexOf(1) + [1, 2, 1].lastIndexOf(1)", 2),
    ("'abc'.indexOf('c')", 2),
    ("'abc 123 x45'.find('[0-9]+')", "123"),
    ("'abc 123 x45'.findAll('[a-z]([0-9]+)')", ["x45"]),  # whole matches, groups or not
    ("'aaa'.findAll('a', 2)", ["a", "a"]),
    ("'no digits'.find('[0-9]')", ""),
    ("url('https://example.com:8443/a/b?x=1&x=2').getPort()", "8443"),
    ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('https://example.com/p?x=1&x=2').getQuery()", {"x": ["1", "2"]}),
    ("isURL('not a url')", False),
    ("ip('10.0.0.1').family() == 4 && ip('::1').isLoopback()", True),
    ("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')", True),
    ("cidr('10.0.0.0/8').containsIP('10.1.2.3') && !cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))", True),
    ("cidr('10.0.0.1/8').masked() == cidr('10.0.0.0/8') && cidr('10.0.0.1/8').ip() == ip('10.0.0.1')", True),
    ("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && cidr('10.0.0.0/8').prefixLength() == 8", True),
    ("ip('8.8.8.8').isGlobalUnicast() && !ip('169.254.1.1').isGlobalUnicast()", True),
    ("string(ip('2001:DB8::1')) + ' ' + string(cidr('10.0.0.0/8'))", "2001:db8::1 10.0.0.0/8"),
    ("'a,b'.split(',').sort().join('-')", "a-b"),
    ("' Ab '.trim().upperAscii() + 'abcd'.substring(1, 3) + 'abc'.charAt(0) + 'a-b'.replace('-', '_')", "ABbcaa_b"),
    ("'%s=%d'.format(['a', 1]) + strings.quote('q') + 'abc'.reverse()", 'a=1"q"cba'),
    ("sets.contains([1, 2], [1]) && [1, 1, 2].distinct() == [1, 2]", True),
    ("regex.extractAll('a1b22', '[0-9]+')", ["1", "22"]),
    ("cel.bind(x, 2, x * x)", 4),
    ("{'a': 1}.?b.orValue(3)", 3),
])
def test_library_functions(expression: str, expected: Any) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize("expression,error", [
    ("quantity('1.5').asInteger()", "has a fractional part"),
    ("quantity('1x')", "invalid quantity '1x'"),
    ("[].max()", "max called on empty list"),
    ("'x'.find('(')", "in '('"),
    ("ip('::ffff:1.2.3.4')", "IPv4-mapped IPv6 address is not allowed"),
    ("ip('fe80::1%eth0')", "zone value is not allowed"),
    ("cidr('10.0.0.1')", "network address parse error"),
    ("url('relative/path')", "not an absolute URI or path"),
    ("quantity('1').getHost()", "not a URL"),
])
def test_library_errors_are_cel_errors(expression: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        value(expression)


# --- evaluation -------------------------------------------------------------------------------------------


def test_bindings_as_validating_admission_policy_gives_them() -> None:
    policies = load(tenant([rule(
        "object.kind == 'Pod' && object.metadata.namespace == 'shop' && request.kind.kind == 'Deployment' && "
        "request.kind.group == 'apps' && request.resource.resource == 'deployments' && request.operation == 'CREATE' "
        "&& request.namespace == 'shop' && request.name == 'web' && request.userInfo.username == 'alice' && "
        "'dev' in request.userInfo.groups && request.dryRun && oldObject == null && "
        "namespaceObject.metadata.labels['tier'] == 'gold' && namespaceObject.metadata.name == 'shop'")]))
    state = InMemoryClusterState()
    state.add_namespace("shop", {"tier": "gold"})
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": "a", "image": "a:1"}]}}}}
    decision = judge(policies, deployment, state=state, username="alice", groups=("dev",), dry_run=True)
    assert decision.allowed, decision.violations


def test_evaluation_errors_deny_under_enforce_and_warn_under_warn() -> None:
    broken = [rule("object.spec.nope.size() > 0", "broken"),
              rule("object.spec.containers[0].image + 1 == 2", "types")]
    decision = judge(load(tenant(broken)), pod())
    assert not decision.allowed
    assert [(v.rule, v.message, v.status) for v in decision.violations] == [
        ("cel/broken", "validations[0].expression could not be evaluated: no such key: nope", Status.ERROR),
        ("cel/types", "validations[0].expression could not be evaluated: no matching overload for "
                      "_+_(string, int64)", Status.ERROR),
    ]
    assert {r.rule: r.status for r in decision.results if r.rule.startswith("cel/")} == \
        {"cel/broken": Status.ERROR, "cel/types": Status.ERROR}
    warned = judge(load(tenant(broken, enforcement="Warn")), pod())
    assert warned.allowed and len(warned.warned) == 2
    assert warned.warnings[0] == "[shop/cel/broken] validations[0].expression could not be evaluated: no such key: nope"


def test_messages_as_validating_admission_policy_builds_them() -> None:
    rules = [
        rule("false", "plain"),
        rule("false", "message", validation={"message": "fixed"}),
        rule("false", "expression", validation={"message": "fixed", "messageExpression": "'made ' + 'here'"}),
        rule("false", "empty", validation={"message": "fixed", "messageExpression": "''"}),
        rule("false", "failing", validation={"message": "fixed", "messageExpression": "object.nope"}),
    ]
    decision = judge(load(tenant(rules)), pod())
    assert [v.message for v in decision.violations] == [
        "failed expression: false", "fixed", "made here", "fixed",
        "fixed (validations[0].messageExpression could not be evaluated: no such key: nope)",
    ]


def test_variables_are_lazy_and_see_earlier_variables() -> None:
    rules = [{"name": "lazy", "variables": [
        {"name": "ports", "expression": "object.spec.ports"},  # absent on this pod: an error, never read
        {"name": "images", "expression": "object.spec.containers.map(c, c.image)"},
        {"name": "first", "expression": "variables.images[0]"},
    ], "validations": [{"expression": "variables.first == 'app:1' && variables.images.size() == 1"},
                       {"expression": "!has(object.spec.ports) || variables.ports.size() == 0"}]}]
    assert judge(load(tenant(rules)), pod()).allowed


def test_match_conditions_skip_the_rule_and_their_errors_deny() -> None:
    rules = [{"name": "only-team-a", "matchConditions": [
        {"name": "team-a", "expression": "object.metadata.labels['team'] == 'a'"}],
        "validations": [{"expression": "false", "message": "team a is judged"}]}]
    policies = load(tenant(rules))
    assert not judge(policies, pod(labels={"team": "a"})).allowed
    skipped = judge(policies, pod(labels={"team": "b"}))
    assert skipped.allowed
    assert [r.status for r in skipped.results if r.rule == "cel/only-team-a"] == [Status.SKIP]
    broken = judge(policies, pod())  # no labels: the condition cannot be evaluated
    assert [v.message for v in broken.violations] == [
        "matchConditions[0].expression (team-a) could not be evaluated: no such key: labels"]


def test_a_kind_the_rule_names_is_judged_as_itself_a_pod_rule_judges_the_template() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}},
                                                      "spec": {"containers": [{"name": "a", "image": "a:1"}]}}}}
    as_pod = load(tenant([rule("object.kind == 'Pod' && object.metadata.labels.app == 'web'", "pod")]))
    assert judge(as_pod, deployment).allowed
    as_itself = load(tenant([rule("object.kind == 'Deployment' && object.spec.replicas == 3", "dep",
                                  match={"kinds": ["Pod", "Deployment"]})]))
    assert judge(as_itself, deployment).allowed
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "NodePort"}}
    assert judge(as_pod, service).allowed and not [r for r in judge(as_pod, service).results
                                                   if r.status is not Status.SKIP]


def test_kube_system_is_never_judged() -> None:
    decision = judge(load(cluster([rule("false")])), pod(), namespace="kube-system")
    assert decision.allowed and decision.skipped


def test_programs_are_compiled_once_per_load(monkeypatch: pytest.MonkeyPatch) -> None:
    policies = load(tenant([{"name": "v", "variables": [{"name": "n", "expression": "object.metadata.name"}],
                             "validations": [{"expression": "variables.n == 'p'"}]}]))

    def no_compiling(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled while judging a request")

    monkeypatch.setattr(cel_program, "compile_rule", no_compiling)
    monkeypatch.setattr(cel_program, "new_env", no_compiling)
    for _ in range(3):
        assert judge(policies, pod()).allowed
        assert not judge(policies, pod(name="q")).allowed


def test_one_activation_per_request_serves_every_rule() -> None:
    policies = load(tenant([rule("true", f"r{i}") for i in range(5)]), cluster([rule("true", "c")]))
    calls = []
    env = execution_env()

    class Counting:
        def Activation(self, data: Any) -> Any:  # noqa: N802 - the binding's name
            calls.append(data)
            return env.Activation(data)

    import webhook.core.validators.cel as cel_validator
    original = cel_validator.execution_env
    cel_validator.execution_env = lambda: Counting()  # type: ignore[assignment]
    try:
        assert judge(policies, pod()).allowed
    finally:
        cel_validator.execution_env = original
    assert len(calls) == 1


def test_rule_results_carry_the_rule_id_and_time() -> None:
    policies = load(tenant([rule("true", "timed")]))
    ticks = iter(range(100))
    decision = evaluate(AdmissionRequest(obj=pod(), namespace="shop"), policies, InMemoryClusterState(),
                        mutate=False, timer=lambda: float(next(ticks)))
    [result] = [r for r in decision.results if r.rule == "cel/timed"]
    assert result.policy == "shop" and result.status is Status.PASS and result.seconds is not None


# --- cost ---------------------------------------------------------------------------------------------------


def test_a_rule_over_its_budget_on_this_object_is_not_evaluated_and_denies() -> None:
    quadratic = rule("object.spec.containers.all(a, object.spec.containers.all(b, a.name == b.name || "
                     "a.image != b.image))", "pairs")
    policies = load(tenant([quadratic]))
    small = pod(containers=[{"name": f"c{i}", "image": f"i{i}"} for i in range(5)])
    assert judge(policies, small).allowed
    huge = pod(containers=[{"name": f"c{i}", "image": f"i{i}"} for i in range(800)])
    decision = judge(policies, huge)
    assert not decision.allowed
    [finding] = decision.violations
    assert finding.status is Status.ERROR
    assert finding.message.startswith("validations[0].expression: estimated cost ")
    assert "exceeds the limit of 1,000,000 per expression; not evaluated" in finding.message


def test_the_cost_bound_follows_what_the_expression_iterates() -> None:
    program = compile_rule([], [], [("object.spec.containers.all(c, c.env.all(e, e.name != ''))", None, None,
                                     None)])
    [cost] = program.costs
    poly = polynomial(cost)
    containers = [{"name": "a", "env": [{"name": "x"}] * 2000}, {"name": "b"}]
    data = {"object": {"spec": {"containers": containers}}}
    # two containers, 2000 env entries at most: the bound grows with 2 * 2000, not with 2000 * 2000
    assert 2 * 2000 < bound(poly, Sizes(data)) < PER_CALL_LIMIT


# --- rewriting -----------------------------------------------------------------------------------------------


def test_variables_are_bound_by_name_outside_strings_and_fields() -> None:
    text, used = bind_variables("variables.a + 'variables.b' + x.variables.c + variables.d // variables.e")
    assert text == "tgv__a + 'variables.b' + x.variables.c + tgv__d // variables.e"
    assert used == {"a", "d"}


def test_roots_are_replaced_only_where_they_are_roots() -> None:
    out = replace_roots("has(object.spec.x) && y.object == object.kind && 'object' != ''",
                        {"object": "object.spec.template"})
    assert out == "has(object.spec.template.spec.x) && y.object == object.spec.template.kind && 'object' != ''"


# --- the answer cache -----------------------------------------------------------------------------------------


def test_a_rule_reading_the_name_is_never_served_from_the_answer_cache() -> None:
    by_name = load(tenant([rule("object.metadata.name.startsWith('web-')")]))
    by_spec = load(tenant([rule("object.spec.containers.all(c, c.image != '') && "
                                "object.metadata.labels['a'] == 'b' && request.userInfo.username != ''")]))
    cache = AnswerCache()
    request = AdmissionRequest(obj=pod(), namespace="shop", operation="CREATE")
    assert cache.key("validate", request, by_name, None) is None
    assert cache.key("validate", request, by_spec, None) is not None
    # a controller's template is presented as the pod: its metadata is part of the key
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"template": {"metadata": {}, "spec": {"containers": []}}}}
    as_controller = AdmissionRequest(obj=deployment, namespace="shop")
    assert cache.key("validate", as_controller, by_name, None) is not None
    uid = load(tenant([rule("request.uid != ''")]))
    assert cache.key("validate", request, uid, None) is None


# --- lint -------------------------------------------------------------------------------------------------------


def test_lint_finds_unused_variables_and_constant_expressions() -> None:
    policies = load(tenant([
        {"name": "r", "variables": [{"name": "used", "expression": "object.spec"},
                                    {"name": "via", "expression": "variables.used.containers"},
                                    {"name": "idle", "expression": "object.metadata"}],
         "matchConditions": [{"name": "never", "expression": "1 == 2"}],
         "validations": [{"expression": "size(variables.via) > 0"}, {"expression": "false || false"},
                         {"expression": "'a' in ['a', 'b']"},
                         {"expression": "object.spec.type == 'A' && has(object.spec.b) && 'B' == object.spec.type"},
                         {"expression": "object.kind == 'Pod' && !(object.kind == 'Pod')"},
                         {"expression": "object.kind == 'Pod' && object.kind in ['Job', 'CronJob']"},
                         {"expression": "size(object.spec.containers) < 0"},
                         {"expression": "object.spec.containers.size() >= 0"},
                         # not constant: another field, a value the list holds, numbers equal across types
                         {"expression": "object.spec.type == 'A' && object.spec.other == 'B'"},
                         {"expression": "object.kind == 'Pod' && object.kind in ['Pod', 'Job']"},
                         {"expression": "object.spec.replicas == 1 && object.spec.replicas == 1.0"},
                         {"expression": "size(object.spec.containers) > 0"}]},
    ]))
    found = warnings_for(policies, date(2026, 1, 1))
    base = "policies/p.yaml: TenantPolicy shop: spec.rules.cel[0]"
    assert found == [
        f"{base}.variables[2]: variable idle is never used (no validation, messageExpression or matchCondition "
        "reads it)",
        f"{base}.matchConditions[0].expression: matchCondition never is always false: the rule never applies",
        f"{base}.validations[1].expression: is always false: every Pod the rule matches is denied",
        f"{base}.validations[2].expression: is always true: the validation never fails",
        *(f"{base}.validations[{i}].expression: is always false: every Pod the rule matches is denied"
          for i in (3, 4, 5, 6)),
        f"{base}.validations[7].expression: is always true: the validation never fails",
    ]


# --- render --vap ------------------------------------------------------------------------------------------------


def _vap_policies() -> PolicySet:
    return load(
        tenant([{"name": "no-latest", "variables": [{"name": "images",
                                                     "expression": "object.spec.containers.map(c, c.image)"}],
                 "matchConditions": [{"name": "labelled", "expression": "has(object.metadata.labels)"}],
                 "validations": [{"expression": "variables.images.all(i, !i.endsWith(':latest'))",
                                  "messageExpression": "'pin ' + variables.images[0]", "reason": "Forbidden"}]},
                {"name": "nodeport", "match": {"kinds": ["Service"], "operations": ["CREATE"]},
                 "validations": [{"expression": "object.spec.type != 'NodePort'", "message": "no NodePort"}]}],
               enforcement="Warn",
               exemptions=[{"users": ["ci-*"], "reason": "ci"},
                           {"namespaces": ["shop"], "groups": ["admins"], "reason": "admins",
                            "expires": "2030-01-01"},
                           {"namespaces": ["old"], "reason": "gone", "expires": "2020-01-01"}]),
        cluster([rule("object.spec.containers.all(c, c.name != '')", "named", match={"kinds": ["Pod", "Job"]})]),
    )


def test_render_vap_objects_are_valid_kubernetes_and_follow_the_modes() -> None:
    result = render_vap(_vap_policies(), today=date(2026, 1, 1))
    for obj in result.objects:
        k8s_schema.assert_valid(obj)
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in result.objects}
    names = sorted(n for k, n in by_name if k == "ValidatingAdmissionPolicy")
    assert names == ["tenantguard-base-named", "tenantguard-base-named-controllers", "tenantguard-base-named-cronjobs",
                     "tenantguard-shop-no-latest", "tenantguard-shop-no-latest-controllers",
                     "tenantguard-shop-no-latest-cronjobs", "tenantguard-shop-nodeport"]
    binding = by_name[("ValidatingAdmissionPolicyBinding", "tenantguard-shop-no-latest")]["spec"]
    assert binding == {"policyName": "tenantguard-shop-no-latest", "validationActions": ["Warn"],
                       "matchResources": {"namespaceSelector": {"matchLabels": {"tenantguard.io/tenant": "shop"}}}}
    cluster_binding = by_name[("ValidatingAdmissionPolicyBinding", "tenantguard-base-named")]["spec"]
    assert cluster_binding["validationActions"] == ["Deny"]
    assert cluster_binding["matchResources"]["namespaceSelector"] == {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]}
    # a Job named by the rule is judged as itself: not in the controllers variant
    controllers = by_name[("ValidatingAdmissionPolicy", "tenantguard-base-named-controllers")]["spec"]
    resources = {r for rr in controllers["matchConstraints"]["resourceRules"] for r in rr["resources"]}
    assert resources == {"deployments", "statefulsets", "daemonsets", "replicasets", "replicationcontrollers"}
    base = by_name[("ValidatingAdmissionPolicy", "tenantguard-base-named")]["spec"]
    assert {r for rr in base["matchConstraints"]["resourceRules"] for r in rr["resources"]} == {"pods", "jobs"}
    # the controllers variant reads the template where the rule reads the object
    shop = by_name[("ValidatingAdmissionPolicy", "tenantguard-shop-no-latest-cronjobs")]["spec"]
    assert shop["variables"] == [{"name": "images",
                                  "expression": "object.spec.jobTemplate.spec.template.spec.containers.map(c, c.image)"}]
    assert shop["validations"][0]["reason"] == "Forbidden"
    service = by_name[("ValidatingAdmissionPolicy", "tenantguard-shop-nodeport")]["spec"]
    assert service["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["services"],
         "scope": "Namespaced"}]
    assert any("expires on 2030-01-01" in n for n in result.notes)
    assert any("spec.exemptions[2]: expired on 2020-01-01; not rendered" in n for n in result.notes)
    assert any('webhooks.extraKinds: [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"]}]' in n
               for n in result.notes)


def test_rendered_expressions_compile_and_exemptions_hold_as_in_the_webhook() -> None:
    result = render_vap(_vap_policies(), today=date(2026, 1, 1))
    for obj in result.objects:
        if obj["kind"] != "ValidatingAdmissionPolicy":
            continue
        spec = obj["spec"]
        compile_rule([(v["name"], v["expression"]) for v in spec.get("variables", [])],
                     [(c["name"], c["expression"]) for c in spec.get("matchConditions", [])],
                     [(v["expression"], v.get("message"), v.get("messageExpression"), v.get("reason"))
                      for v in spec["validations"]])
    [shop] = [o for o in result.objects if o["metadata"]["name"] == "tenantguard-shop-nodeport"
              and o["kind"] == "ValidatingAdmissionPolicy"]
    [condition] = [c["expression"] for c in shop["spec"]["matchConditions"] if c["name"] == "tenantguard-exemptions"]

    def applies(namespace: str, username: str, groups: list[str]) -> bool:
        return bool(value(condition, request={"namespace": namespace, "userInfo": {"username": username,
                                                                                    "groups": groups}}))

    assert applies("shop", "alice", [])
    assert not applies("shop", "ci-bot", [])  # users: [ci-*]
    assert not applies("shop", "alice", ["admins"])  # namespaces: [shop] AND groups: [admins]
    assert applies("other", "alice", ["admins"])
    assert applies("old", "alice", [])  # expired: not rendered


@pytest.mark.parametrize("pattern,matches,misses", [
    ("team-*", ["team-", "team-a-b"], ["teamx", "a-team-"]),
    ("ns-?", ["ns-1"], ["ns-12"]),
    ("x[!a]y", ["xby"], ["xay"]),
    ("a.b", ["a.b"], ["axb"]),
])
def test_globs_become_re2_patterns(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_regex(pattern)
    for name in matches:
        assert value("s.matches(r)", s=name, r=regex), (pattern, name)
    for name in misses:
        assert not value("s.matches(r)", s=name, r=regex), (pattern, name)


def test_render_vap_cli_writes_objects_and_a_values_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(tenant([rule("object.spec.containers.size() > 0", "one")])))
    result = run_cli("render", "--vap", "--policies", str(path))
    assert result.code == 0, result.err
    docs = list(yaml.safe_load_all(result.out))
    assert [d["kind"] for d in docs].count("ValidatingAdmissionPolicy") == 3
    values = run_cli("render", "--vap", "--policies", str(path), "--output", "values")
    assert yaml.safe_load(values.out) == {"vap": {"enabled": True, "objects": docs}}
    listed = run_cli("render", "--vap", "--policies", str(path), "--output", "json")
    assert json.loads(listed.out)["items"] == docs
    refused = run_cli("render", "--vap", "--policies", str(path), "--only", "quota")
    assert refused.code == 2 and "--vap renders the CEL rules alone" in refused.err


def test_cel_rule_validators_are_cel_rules() -> None:
    [validator] = [v for v in load(tenant([rule("true", "x")])).tenants[0].validators if isinstance(v, CelRule)]
    assert validator.rule == "cel/x" and "Deployment" in (validator.kinds or ())
    assert validator.whole_object_kinds == frozenset()


# --- the server: per-rule metrics, and a reload that does not compile --------------------------------------


async def test_http_metrics_name_cel_rules_and_a_bad_reload_keeps_the_last_good_set(aiohttp_client,
                                                                                    tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from tests.test_server_http import post, review
    from webhook.server.app import WebhookContext, create_app
    from webhook.server.metrics import Metrics
    from webhook.server.policy_store import PolicyStore
    from webhook.views.files import StaticClusterView

    folder = tmp_path / "policies"
    folder.mkdir()
    good = tenant([rule("object.spec.containers.all(c, !c.image.endsWith(':latest'))", "no-latest"),
                   rule("object.metadata.labels.owner != ''", "owner"),
                   rule("namespaceObject.metadata.labels['tier'] != 'frozen'", "tier")])
    (folder / "shop.yaml").write_text(yaml.safe_dump(good))
    view = StaticClusterView()
    view.add_namespace("shop", {"tier": "frozen"})
    metrics = Metrics()
    store = PolicyStore([folder], listener=metrics)
    store.load()
    client = await aiohttp_client(create_app(WebhookContext(store, view, metrics)))
    latest = pod()
    latest["metadata"]["namespace"] = "shop"
    latest["spec"]["containers"][0]["image"] = "app:latest"

    async def answer() -> dict[str, Any]:
        return (await (await post(client, "/validate", review(latest))).json())["response"]

    first = await answer()
    assert not first["allowed"]
    assert first["status"]["message"].splitlines()[1:] == [
        "- [shop/cel/no-latest] failed expression: object.spec.containers.all(c, !c.image.endsWith(':latest'))",
        "- [shop/cel/owner] validations[0].expression could not be evaluated: no such key: labels",
        "- [shop/cel/tier] failed expression: namespaceObject.metadata.labels['tier'] != 'frozen'",
    ]
    text = await (await client.get("/metrics")).text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    for name in ("no-latest", "tier"):
        key = ("tenantguard_policy_violations_total",
               (("enforcement", "Enforce"), ("policy", "shop"), ("rule", f"cel/{name}")))
        assert samples[key] == 1.0
    assert samples[("tenantguard_rule_errors_total", (("policy", "shop"), ("rule", "cel/owner")))] == 1.0
    assert samples[("tenantguard_rule_duration_seconds_count",
                    (("policy", "shop"), ("rule", "cel/no-latest")))] == 1.0
    # a reload whose CEL does not compile names file, field and position, and the last good set stays
    generation = store.generation
    broken = tenant([rule("object.spec.containers.all(c, c.image == 'x'", "no-latest")])
    (folder / "shop.yaml").write_text(yaml.safe_dump(broken))
    result = await store.reload_if_changed()
    assert result is not None and not result.ok and store.generation == generation
    assert list(result.errors) == [f"{folder / 'shop.yaml'}: document 1: spec.rules.cel[0].validations[0].expression: "
                                   "line 1, column 45: Syntax error: missing ')' at '<EOF>'"]
    again = await answer()
    assert not again["allowed"] and "[shop/cel/no-latest]" in again["status"]["message"]
