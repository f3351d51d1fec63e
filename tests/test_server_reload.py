"""Hot reload: policy files (edits, the ConfigMap ``..data`` swap, broken files) and TLS certificates.

Reloads are driven directly (``reload_if_changed``) so nothing waits on a clock, plus one
test of the watcher itself that awaits the store's attempt counter.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_server_http import pod, post, review
from webhook.actions.certs import generate_self_signed
from webhook.server.app import WebhookContext, create_app
from webhook.views.files import StaticClusterView
from webhook.server.metrics import Metrics
from webhook.server.policy_store import PolicyStore
from webhook.server.runner import WebhookServer
from webhook.server.settings import ServerSettings

CPU_LIMITS = """\
apiVersion: tenantguard.io/v1alpha1
kind: ClusterPolicy
metadata: {name: limits}
spec:
  rules: {requireLimits: [cpu]}
"""
CPU_AND_MEMORY_LIMITS = """\
apiVersion: tenantguard.io/v1alpha1
kind: ClusterPolicy
metadata: {name: limits}
spec:
  rules: {requireLimits: [cpu, memory]}
"""
BROKEN = """\
apiVersion: tenantguard.io/v1alpha1
kind: ClusterPolicy
metadata: {name: limits}
spec:
  rules: {requireLimitz: [cpu]}
"""


def cpu_limited_pod() -> dict:
    obj = pod()
    obj["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1"}
    return obj


async def allowed(client) -> bool:
    return (await (await post(client, "/validate", review(cpu_limited_pod()))).json())["response"]["allowed"]


def samples(text: str, name: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


@pytest.fixture
async def served(aiohttp_client, tmp_path: Path):
    """A client on policies read from ``tmp_path/policies/limits.yaml`` (CPU limits required)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "limits.yaml").write_text(CPU_LIMITS)
    metrics = Metrics()
    store = PolicyStore([folder], listener=metrics)
    store.load()
    client = await aiohttp_client(create_app(WebhookContext(store, StaticClusterView(), metrics)))
    client.store, client.folder = store, folder
    return client


async def test_an_edit_is_served_after_reload(served) -> None:
    store, before = served.store, served.store.generation
    assert await allowed(served) is True
    assert await store.reload_if_changed() is None  # nothing changed, nothing read
    (served.folder / "limits.yaml").write_text(CPU_AND_MEMORY_LIMITS)
    result = await store.reload_if_changed()
    assert result is not None and result.ok and result.changed
    assert store.generation == result.generation != before
    assert await allowed(served) is False  # the new rule is enforced
    metrics = await (await served.get("/metrics")).text()
    assert samples(metrics, "tenantguard_policy_generation_info") == {(("generation", store.generation),): 1.0}
    assert samples(metrics, "tenantguard_policy_reloads_total") == {(("result", "success"),): 2.0}


async def test_a_new_file_is_picked_up(served) -> None:
    (served.folder / "extra.yaml").write_text(CPU_AND_MEMORY_LIMITS.replace("name: limits", "name: extra"))
    result = await served.store.reload_if_changed()
    assert result.ok and result.changed
    assert await allowed(served) is False


async def test_a_broken_file_keeps_the_last_good_set(served, caplog) -> None:
    store, good = served.store, served.store.generation
    (served.folder / "limits.yaml").write_text(BROKEN)
    with caplog.at_level("ERROR", logger="tenantguard.policies"):
        result = await store.reload_if_changed()
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "policy_reload"]
    assert record.files == [str(served.folder / "limits.yaml")] and "limits.yaml" in record.getMessage()
    assert not result.ok and not result.changed and result.generation == good
    assert any("requireLimitz: unknown field" in e for e in result.errors)
    assert store.generation == good and await allowed(served) is True  # still the old rule
    # ready (a replica going unready over a typo would be a lockout), and the body names the failure
    resp = await served.get("/readyz")
    assert resp.status == 200
    body = await resp.text()
    broken = str(served.folder / "limits.yaml")
    assert body.startswith(f"ok (policies {good}; reload failed ")
    assert "s ago: " + broken + ": document 1: spec.rules.requireLimitz: unknown field" in body
    assert store.last_failure is not None and store.last_failure.files == (broken,)
    assert await store.reload_if_changed() is None  # the same broken content is not retried
    metrics = await (await served.get("/metrics")).text()
    assert samples(metrics, "tenantguard_policy_reloads_total") == {
        (("result", "success"),): 1.0, (("result", "failure"),): 1.0}
    assert samples(metrics, "tenantguard_policy_generation_info") == {(("generation", good),): 1.0}
    assert samples(metrics, "tenantguard_policy_last_reload_success") == {(): 0.0}
    failed_at = samples(metrics, "tenantguard_policy_last_reload_timestamp_seconds")[()]
    assert failed_at >= samples(metrics, "tenantguard_policy_last_success_timestamp_seconds")[()]
    # fixed: served again, and the failure is gone from /readyz
    (served.folder / "limits.yaml").write_text(CPU_AND_MEMORY_LIMITS)
    result = await store.reload_if_changed()
    assert result.ok and result.changed and await allowed(served) is False
    assert await (await served.get("/readyz")).text() == f"ok (policies {store.generation})\n"
    metrics = await (await served.get("/metrics")).text()
    assert samples(metrics, "tenantguard_policy_last_reload_success") == {(): 1.0}


async def test_a_truncated_file_keeps_the_last_good_set_and_names_the_file(served) -> None:
    """A non-atomic rewrite caught half-way: an empty policy file is an error, never an empty set."""
    store, good = served.store, served.store.generation
    (served.folder / "limits.yaml").write_text("")
    result = await store.reload_if_changed()
    assert not result.ok and store.generation == good
    assert await allowed(served) is True and not await allowed_without_limits(served)  # the rule still holds
    body = await (await served.get("/readyz")).text()
    assert "reload failed" in body and str(served.folder / "limits.yaml") in body and "empty" in body


async def allowed_without_limits(client) -> bool:
    return (await (await post(client, "/validate", review(pod()))).json())["response"]["allowed"]


async def test_unparseable_yaml_and_a_vanished_directory_keep_the_last_good_set(served) -> None:
    store, good = served.store, served.store.generation
    (served.folder / "limits.yaml").write_text("spec: [unclosed\n")
    assert not (await store.reload_if_changed()).ok
    shutil.rmtree(served.folder)
    result = await store.reload_if_changed()
    assert not result.ok and "no such file or directory" in result.errors[0]
    assert store.generation == good and await allowed(served) is True


def _publish(folder: Path, version: str, files: dict[str, str]) -> None:
    """What kubelet does to a mounted ConfigMap: a new hidden directory, then an atomic ..data rename."""
    target = folder / version
    target.mkdir()
    for name, text in files.items():
        (target / name).write_text(text)
    tmp = folder / "..data_tmp"
    os.symlink(version, tmp)
    os.replace(tmp, folder / "..data")
    for name in files:
        link = folder / name
        if not link.is_symlink():
            os.symlink(f"..data/{name}", link)


async def test_configmap_symlink_swap(aiohttp_client, tmp_path: Path) -> None:
    folder = tmp_path / "configmap"
    folder.mkdir()
    _publish(folder, "..2025_01_01_00_00_00.000000001", {"limits.yaml": CPU_LIMITS})
    store = PolicyStore([folder])
    first = store.load().generation
    client = await aiohttp_client(create_app(WebhookContext(store, StaticClusterView(), Metrics())))
    assert await allowed(client) is True
    _publish(folder, "..2025_01_01_00_01_00.000000002", {"limits.yaml": CPU_AND_MEMORY_LIMITS})
    shutil.rmtree(folder / "..2025_01_01_00_00_00.000000001")
    result = await store.reload_if_changed()
    assert result.ok and result.changed and store.generation != first
    assert await allowed(client) is False
    # a swap to a broken version keeps the good one
    _publish(folder, "..2025_01_01_00_02_00.000000003", {"limits.yaml": BROKEN})
    result = await store.reload_if_changed()
    assert not result.ok and store.generation == result.generation
    assert await allowed(client) is False


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, Path]:
    ca, cert, key = generate_self_signed(["localhost", "127.0.0.1"], tmp_path / "tls")
    return {"ca": ca, "cert": cert, "key": key}


def settings_for(tmp_path: Path, tls: dict[str, Path], **kw) -> ServerSettings:
    folder = tmp_path / "policies"
    if not folder.exists():
        folder.mkdir()
        (folder / "limits.yaml").write_text(CPU_LIMITS)
    return ServerSettings(policies=(str(folder),), cert=str(tls["cert"]), key=str(tls["key"]), host="127.0.0.1",
                          port=0, **kw)


def client_context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


async def test_the_watcher_reloads_on_its_own(tmp_path: Path, tls) -> None:
    settings = settings_for(tmp_path, tls, reload_interval=0.02)
    async with WebhookServer(settings) as server:
        before, attempts = server.policies.generation, server.policies.attempts
        (tmp_path / "policies" / "limits.yaml").write_text(CPU_AND_MEMORY_LIMITS)
        await asyncio.wait_for(server.policies.wait_for_attempts(attempts + 1), 10)
        assert server.policies.generation != before
        url = f"https://localhost:{server.port}/validate"
        async with aiohttp.ClientSession() as session, session.post(
                url, data=json.dumps(review(cpu_limited_pod())), headers={"Content-Type": "application/json"},
                ssl=client_context(tls["ca"])) as resp:
            assert (await resp.json())["response"]["allowed"] is False


async def test_certificate_rotation_keeps_established_connections(tmp_path: Path, tls) -> None:
    settings = settings_for(tmp_path, tls, reload_interval=3600)  # reloads driven by the test
    old_ctx = client_context(tls["ca"])
    async with WebhookServer(settings) as server:
        url = f"https://localhost:{server.port}"
        first_expiry = server.certs.not_after
        connector = aiohttp.TCPConnector(ssl=old_ctx, limit=1)
        async with aiohttp.ClientSession(connector=connector) as kept:
            assert (await kept.get(url + "/healthz")).status == 200  # one keep-alive connection, old cert
            # a new pair, written key first: the half-written state is refused, the old cert stays
            new_ca, new_cert, new_key = generate_self_signed(["localhost", "127.0.0.1"], tmp_path / "new", days=30)
            shutil.copy(new_key, tls["key"])
            assert await server.reload_certificates() is False
            async with aiohttp.ClientSession() as fresh:
                assert (await fresh.get(url + "/healthz", ssl=old_ctx)).status == 200
            shutil.copy(new_cert, tls["cert"])
            assert await server.reload_certificates() is True
            assert server.certs.not_after < first_expiry
            async with aiohttp.ClientSession() as fresh:
                assert (await fresh.get(url + "/healthz", ssl=client_context(new_ca))).status == 200
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await fresh.get(url + "/healthz", ssl=old_ctx)
            # the connection opened before the rotation still answers (limit=1: no new handshake)
            resp = await kept.post(url + "/validate", data=json.dumps(review(cpu_limited_pod())),
                                   headers={"Content-Type": "application/json"})
            assert resp.status == 200 and (await resp.json())["response"]["allowed"] is True
            metrics = await (await kept.get(url + "/metrics")).text()
        expiry = samples(metrics, "tenantguard_tls_cert_expiry_timestamp_seconds")
        assert expiry == {(): server.certs.not_after}
        assert samples(metrics, "tenantguard_tls_cert_reloads_total") == {
            (("result", "success"),): 2.0, (("result", "failure"),): 1.0}
