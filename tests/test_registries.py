"""allowedRegistries: images read as the container runtime reads them; entries match the registry host and path
components, a glob never spanning a `/`."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.views.memory import InMemoryClusterState
from webhook.core.engine import evaluate
from webhook.core.request import AdmissionRequest
from webhook.core.validators.boundaries import InvalidImage, parse_image, registry_allows
from webhook.policy.loader import SourceDoc, build_policy_set

DIGEST = "sha256:" + "0123456789abcdef" * 4


def judge(entries: list[str], image: str, *, where: str = "containers") -> list[Any]:
    """The allowedRegistries violations of a pod running ``image`` in a tenant allowing ``entries``."""
    policies = build_policy_set([SourceDoc(
        {"apiVersion": "tenantguard.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "shop"},
         "spec": {"namespaces": ["shop"], "rules": {"allowedRegistries": entries}}}, "inline", 1)])
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.example.com/team/ok:1"}]}
    if where == "containers":
        spec["containers"] = [{"name": "app", "image": image}]
    else:
        spec[where] = [{"name": "x", "image": image}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    decision = evaluate(AdmissionRequest(obj=pod, namespace="shop"), policies, InMemoryClusterState())
    return [v for v in decision.violations if v.rule == "allowedRegistries"]


MIRROR = ["*.mirror.example.com"]
TEAM = ["registry.example.com/team"]


@pytest.mark.parametrize("entries,image", [
    # a host glob must not reach into the repository path
    (MIRROR, "evil.io/x.mirror.example.com:1"),
    (MIRROR, "evil.io/x.mirror.example.com"),
    (MIRROR, "evil.io/any/path.mirror.example.com/x"),
    (MIRROR, "evil.io/a.mirror.example.com/x:1"),
    (MIRROR, f"evil.io/x.mirror.example.com@{DIGEST}"),
    (MIRROR, "x.mirror.example.com"),  # no registry at all: docker.io/library/x.mirror.example.com
    (MIRROR, "x.mirror.example.com:443"),  # ... with a tag: still Docker Hub
    (MIRROR, "team/x.mirror.example.com"),
    (MIRROR, "localhost/x.mirror.example.com"),
    # nor past the host's end, nor match the bare domain
    (MIRROR, "a.mirror.example.com.evil.io/x"),
    (MIRROR, "a.mirror.example.com:5000/x"),  # another port is another registry
    (MIRROR, "mirror.example.com/x"),
    (MIRROR, "amirror.example.com/x"),
    # a path prefix entry covers that path component, not a longer name
    (TEAM, "registry.example.com/team-evil/x"),
    (TEAM, "registry.example.com/teams/x"),
    (TEAM, "registry.example.com/tea/x"),
    (TEAM, "registry.example.com/other/team/x"),
    (TEAM, "registry.example.com:5000/team/x"),
    (TEAM, "registry.example.com.evil.io/team/x"),
    (TEAM, "evil.io/registry.example.com/team/x"),
    (TEAM, "registry.example.com/x@registry.example.com/team"),
    (TEAM, "registry.example.com/team-evil/x@" + DIGEST),
    (["registry.example.com/team/*"], "registry.example.com/team"),  # the glob wants one more component
    (["registry.example.com/t*m"], "registry.example.com/team-x/team/app"),  # no `*` across a `/`
    # Docker Hub: the runtime's normalisation, nothing looser
    (["docker.io/library"], "evil/nginx"),
    (["docker.io/library"], "docker.io/evil/nginx"),
    (["docker.io/library"], "index.docker.io/evil/library"),
    (["docker.io/library"], "library.evil.io/nginx"),
    (["docker.io"], "docker.io.evil.io/library/nginx"),
    (["docker.io"], "registry-1.docker.io/library/nginx"),
    (["docker.io/team"], "team"),  # docker.io/library/team
])
def test_lookalikes_are_denied(entries: list[str], image: str) -> None:
    [found] = judge(entries, image)
    assert found.actual == image and found.field == "spec.containers[0].image"


@pytest.mark.parametrize("entries,image", [
    (MIRROR, "a.mirror.example.com/x"),
    (MIRROR, "a.b.mirror.example.com/team/app:1.2"),
    (MIRROR, f"a.mirror.example.com/x@{DIGEST}"),
    (MIRROR, f"a.mirror.example.com/x:1@{DIGEST}"),
    (MIRROR, "A.Mirror.EXAMPLE.com/x"),  # host names have no case
    (["*.mirror.example.com:*"], "a.mirror.example.com:5000/x"),
    (TEAM, "registry.example.com/team"),
    (TEAM, "registry.example.com/team/app"),
    (TEAM, "registry.example.com/team/sub/app:v1"),
    (TEAM, f"registry.example.com/team/app@{DIGEST}"),
    (TEAM, "Registry.Example.COM/team/app"),
    (["registry.example.com/team/"], "registry.example.com/team/app"),
    (["Registry.Example.com/team"], "registry.example.com/team/app"),
    (["registry.example.com/team-*"], "registry.example.com/team-a/app"),
    (["registry.example.com/*/app"], "registry.example.com/x/app/v2"),
    (["docker.io/library"], "nginx"),
    (["docker.io/library"], "nginx:1.27"),
    (["docker.io/library"], f"nginx@{DIGEST}"),
    (["docker.io/library"], "docker.io/nginx"),
    (["docker.io/library"], "index.docker.io/library/nginx:1"),
    (["docker.io"], "team/app"),
    (["index.docker.io"], "team/app"),
    (["localhost:5000"], "localhost:5000/app"),
    (["localhost"], "localhost/app"),
    (["[::1]:5000"], "[::1]:5000/app"),
    (["*"], "nginx"),
    (["*"], "evil.io/x"),
    (["*"], "localhost:5000/x/y:1"),
])
def test_allowed(entries: list[str], image: str) -> None:
    assert judge(entries, image) == []


@pytest.mark.parametrize("image", [
    "registry.example.com/Team/app",  # repository paths are lower case
    "registry.example.com/team/../evil",
    "registry.example.com/team//app",
    "registry.example.com/team/",
    "/registry.example.com/team/app",
    "evil.io:1.mirror.example.com/team/app",  # a port is digits, and ends the host
    "registry.example.com:/team/app",
    "-registry.example.com/team/app",
    "registry.example.com/team/app:bad tag",
    "registry.example.com/team/app:" + "t" * 129,
    "registry.example.com/team/app@evil.io/x",
    "registry.example.com/team/app@sha256",
    " registry.example.com/team/app",
    "registry.example.com/team/app\n",
    "0123456789abcdef" * 4,  # an image ID, never a repository
    "registry.example.com/team/" + "a" * 240,  # longer than 255 characters
])
def test_an_image_the_runtime_cannot_parse_is_denied(image: str) -> None:
    with pytest.raises(InvalidImage):
        parse_image(image)
    [found] = judge(TEAM, image)
    assert "is not a valid image reference" in found.message


@pytest.mark.parametrize("where", ["initContainers", "ephemeralContainers"])
def test_every_container_list_is_judged(where: str) -> None:
    def fields(image: str) -> list[str | None]:
        return [v.field for v in judge(MIRROR, image, where=where)]

    # the app container (registry.example.com/team/ok:1) is outside MIRROR in both cases
    assert fields("evil.io/x.mirror.example.com:1") == ["spec.containers[0].image", f"spec.{where}[0].image"]
    assert fields("a.mirror.example.com/x:1") == ["spec.containers[0].image"]


@pytest.mark.parametrize("image,registry,path", [
    ("nginx", "docker.io", "library/nginx"),
    ("nginx:1.27@" + DIGEST, "docker.io", "library/nginx"),
    ("docker.io/nginx", "docker.io", "library/nginx"),
    ("docker.io/library/nginx", "docker.io", "library/nginx"),
    ("index.docker.io/team/app", "docker.io", "team/app"),
    ("team/app:v1", "docker.io", "team/app"),
    ("localhost/app", "localhost", "app"),
    ("localhost:5000/app:v1", "localhost:5000", "app"),
    ("LOCAL/app", "local", "app"),  # an upper-case first component is a host
    ("registry:5000/app", "registry:5000", "app"),
    ("a.b/c/d/e:f", "a.b", "c/d/e"),
    ("evil.io/x.mirror.example.com:1", "evil.io", "x.mirror.example.com"),
    ("x.mirror.example.com:1", "docker.io", "library/x.mirror.example.com"),
    ("[2001:db8::1]:5000/app", "[2001:db8::1]:5000", "app"),
    ("a__b/c-d.e_f", "docker.io", "a__b/c-d.e_f"),
])
def test_registry_and_path_are_the_runtimes(image: str, registry: str, path: str) -> None:
    parsed = parse_image(image)
    assert (parsed.registry, parsed.path) == (registry, path)


def test_entry_matching_directly() -> None:
    image = parse_image("evil.io/x.mirror.example.com:1")
    assert not registry_allows("*.mirror.example.com", image)
    assert not registry_allows("*.mirror.example.com/*", image)
    assert registry_allows("evil.io", image)
    assert registry_allows("evil.io/x.mirror.example.com", image)
    assert not registry_allows("", image)
