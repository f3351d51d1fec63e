"""Wiring the cluster view into the server: opening it, readiness, reservations, start/stop; mutual TLS."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s_client

from tests.test_server_http import cluster_policy, make_context, pod, policy_set, post, review
from tests.test_server_reload import client_context, samples, settings_for
from webhook.actions.certs import generate_ca, generate_self_signed
from webhook.views.watched import ViewSettings, WatchedClusterState
from webhook.server.app import create_app
from webhook.views import ClusterViewError, open_view
from webhook.views.files import StaticClusterView
from webhook.server.runner import WebhookServer


class FakeWatchedView(StaticClusterView):
    """Stands in for webhook.views.watched's view: not synced until the test says so."""

    def __init__(self):
        super().__init__()
        self.synced = False
        self.started = self.stopped = False
        self.judged: list[str] = []

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def record_admitted(self, request, decision):
        self.judged.append(request.uid)


async def test_no_cluster_means_the_static_view(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n")
    view = await open_view(cluster_state=(str(state),))
    assert isinstance(view, StaticClusterView) and view.synced and view.ready
    assert view.namespace_labels("shop") == {"kubernetes.io/metadata.name": "shop", "team": "a"}


async def test_a_bad_cluster_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("kind: [\n")
    with pytest.raises(ClusterViewError, match="--cluster-state"):
        await open_view(cluster_state=(str(state),))


async def test_an_object_the_view_cannot_hold_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
                     "spec: {containers: [{name: c, resources: {requests: {cpu: lots}}}]}\n")
    with pytest.raises(ClusterViewError, match=f"--cluster-state: {state}: document 1: invalid quantity: "
                                               'container "c" resources.requests.cpu'):
        await open_view(cluster_state=(str(state),))


async def test_kubeconfig_opens_the_watched_view_without_starting_it(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "users": [{"name": "test", "user": {"token": "x"}}],
    }))
    view = await open_view(kubeconfig=str(kubeconfig))
    try:
        assert isinstance(view, WatchedClusterState) and not view.synced and not view.ready
    finally:
        await view.stop()


async def test_an_unusable_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterViewError, match="--kubeconfig .*missing"):
        await open_view(kubeconfig=str(tmp_path / "missing"))


def _complete_pod(name: str) -> dict:
    obj = pod(name=name)
    obj["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1", "memory": "1Gi"}
    return obj


async def test_only_allowed_non_dry_run_creates_are_reserved_in_the_watched_view(aiohttp_client) -> None:
    """The real WatchedClusterState (not started: no API server needed) behind the real app."""
    quota = cluster_policy("quota", rules={"requireRequests": ["cpu"]})
    view = WatchedClusterState(k8s_client.ApiClient(), ViewSettings())
    client = await aiohttp_client(create_app(make_context(policy_set(quota), view, answers=None)))
    for name, dry_run in (("dry", True), ("real", False)):
        await post(client, "/mutate", review(_complete_pod(name), uid=name, dry_run=dry_run))
        assert view.store.reservations() == {}  # /mutate never reserves
        body = await (await post(client, "/validate", review(_complete_pod(name), uid=name, dry_run=dry_run))).json()
        assert body["response"]["allowed"] is True
    assert set(view.store.reservations()) == {("shop", "real")}
    usage = view.namespace_usage("shop")
    assert str(usage["requests.cpu"]) in ("0.1", "0.100") and usage["pods"] == 1
    assert (await client.get("/readyz")).status == 503  # never synced: not ready


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, Path]:
    ca, cert, key = generate_self_signed(["localhost", "127.0.0.1"], tmp_path / "tls")
    return {"ca": ca, "cert": cert, "key": key}


async def test_ready_only_once_the_view_is_synced(tmp_path: Path, tls) -> None:
    view = FakeWatchedView()
    settings = settings_for(tmp_path, tls, reload_interval=0.02, trusted_network=True)
    async with WebhookServer(settings, view=view) as server:
        assert view.started
        url = f"https://localhost:{server.port}"
        async with aiohttp.ClientSession() as session:
            ctx = client_context(tls["ca"])
            resp = await session.get(url + "/readyz", ssl=ctx)
            assert resp.status == 503 and "not synced" in await resp.text()
            assert (await session.get(url + "/healthz", ssl=ctx)).status == 200
            # answers are given meanwhile (the API server may still call us): judged on what is known
            complete = pod()
            complete["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "1"}
            resp = await session.post(url + "/validate", data=json.dumps(review(complete, uid="early")),
                                      headers={"Content-Type": "application/json"}, ssl=ctx)
            assert (await resp.json())["response"]["allowed"] is True
            view.synced = True
            assert (await session.get(url + "/readyz", ssl=ctx)).status == 200
            text = await (await session.get(url + "/metrics", ssl=ctx)).text()
            assert samples(text, "tenantguard_cluster_view_synced") == {(): 1.0}
        assert view.judged == ["early"]
    assert view.stopped


def _client_cert(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A client CA and a clientAuth certificate it signed (what an API server's kubeconfig would hold)."""
    ca_cert, ca_key = generate_ca("test client CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder = tmp_path / "client"
    folder.mkdir(parents=True)
    paths = folder / "ca.crt", folder / "client.crt", folder / "client.key"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def test_client_ca_requires_a_client_certificate(tmp_path: Path, tls) -> None:
    client_ca, client_cert, client_key = _client_cert(tmp_path)
    settings = settings_for(tmp_path, tls, client_ca=str(client_ca))
    async with WebhookServer(settings) as server:
        base = f"https://localhost:{server.port}"
        body = json.dumps(review(pod(), uid="c"))
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:
            # the kubelet's probes carry no client certificate: answered
            assert (await session.get(base + "/healthz", ssl=client_context(tls["ca"]))).status == 200
            # a review without one is refused
            resp = await session.post(base + "/validate", data=body, headers=headers, ssl=client_context(tls["ca"]))
            assert resp.status == 403 and "client certificate" in await resp.text()
            with_cert = client_context(tls["ca"])
            with_cert.load_cert_chain(str(client_cert), str(client_key))
            resp = await session.post(base + "/validate", data=body, headers=headers, ssl=with_cert)
            assert resp.status == 200 and (await resp.json())["response"]["uid"] == "c"
            # a certificate from another CA fails the handshake
            _, other_cert, other_key = _client_cert(tmp_path / "other")
            stranger = client_context(tls["ca"])
            stranger.load_cert_chain(str(other_cert), str(other_key))
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                resp = await session.post(base + "/validate", data=body, headers=headers, ssl=stranger)
                await resp.read()


async def test_client_names_are_checked_and_the_client_ca_is_reloaded(tmp_path: Path, tls) -> None:
    client_ca, client_cert, client_key = _client_cert(tmp_path)  # CN kube-apiserver
    settings = settings_for(tmp_path, tls, client_ca=str(client_ca), client_names=("someone-else",),
                            reload_interval=3600)
    async with WebhookServer(settings) as server:
        base = f"https://localhost:{server.port}"
        body = json.dumps(review(pod(), uid="n"))
        headers = {"Content-Type": "application/json"}
        with_cert = client_context(tls["ca"])
        with_cert.load_cert_chain(str(client_cert), str(client_key))
        async with aiohttp.ClientSession() as session:
            resp = await session.post(base + "/validate", data=body, headers=headers, ssl=with_cert)
            assert resp.status == 403 and "kube-apiserver" in await resp.text()
        # the client CA rotates: certificates of the new CA are accepted once it is reloaded
        new_ca, new_cert, new_key = _client_cert(tmp_path / "rotated")
        client_ca.write_bytes(new_ca.read_bytes())
        assert await server.reload_certificates() is True
        rotated = client_context(tls["ca"])
        rotated.load_cert_chain(str(new_cert), str(new_key))
        async with aiohttp.ClientSession() as session:
            resp = await session.post(base + "/validate", data=body, headers=headers, ssl=rotated)
            assert resp.status == 403  # the name check still applies
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                resp = await session.post(base + "/validate", data=body, headers=headers, ssl=with_cert)
                await resp.read()

