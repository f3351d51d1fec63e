"""A mutating webhook in kopf comparable to tenantguard's /mutate, for bench/speed.py.

kopf's own WebhookServer (aiohttp, TLS with the given pair) and one ``@kopf.on.mutate`` handler
that adds a label and a resources default to every container without one, run by kopf's
operator as usual, in a separate venv (kopf is no dependency of ours):

    KOPF_BENCH_PORT=9444 KOPF_BENCH_CERT=tls.crt KOPF_BENCH_KEY=tls.key \\
        /tmp/kopf-venv/bin/kopf run --standalone --all-namespaces bench/kopf_webhook.py

kopf's operator needs a Kubernetes API to log in to and to discover the resources it
serves before its webhook server starts. Without a cluster, this file starts a minimal fake
API in a thread of the same process (``/version``, ``/api``, ``/api/v1`` listing pods and
namespaces, ``/apis`` empty; nothing else is asked of it with scanning disabled and no
watching handlers): it answers a handful of requests at start and is idle afterwards.
The webhook answers POST /mutate (the handler id is the URL path, as kopf routes them).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading

import kopf
from aiohttp import web

RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


def _fake_api() -> str:
    """Start the fake API server in a daemon thread; return its URL."""
    discovery = {
        "/version": {"major": "1", "minor": "31", "gitVersion": "v1.31.0"},
        "/api": {"kind": "APIVersions", "versions": ["v1"]},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
        "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
        ]},
    }

    async def handle(request: web.Request) -> web.Response:
        if request.path in discovery:
            return web.json_response(discovery[request.path])
        if request.query.get("watch") == "true":
            await asyncio.Event().wait()
        return web.json_response({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                  "items": []})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    def run() -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", handle)
        web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=False,
                    loop=asyncio.new_event_loop())

    threading.Thread(target=run, daemon=True, name="fake-kube-api").start()
    return f"http://127.0.0.1:{port}"


FAKE_API = _fake_api()


@kopf.on.login()
def login(**_: object) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=FAKE_API, insecure=True)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: object) -> None:
    settings.admission.server = kopf.WebhookServer(
        addr="127.0.0.1", port=int(os.environ.get("KOPF_BENCH_PORT", "9444")),
        certfile=os.environ.get("KOPF_BENCH_CERT"), pkeyfile=os.environ.get("KOPF_BENCH_KEY"),
        insecure=not os.environ.get("KOPF_BENCH_CERT"))
    settings.admission.managed = None  # no Mutating/ValidatingWebhookConfiguration to maintain
    settings.scanning.disabled = True  # no CRD/namespace watches
    settings.posting.enabled = False  # no k8s Events posted for the handler's log lines


@kopf.on.mutate("pods", id="mutate", operation="CREATE")
def mutate(spec: kopf.Spec, patch: kopf.Patch, **_: object) -> None:
    patch.metadata.setdefault("labels", {})["tenantguard.io/tenant"] = "bench"
    containers = [dict(c) for c in spec.get("containers", [])]
    if any(not c.get("resources") for c in containers):
        for c in containers:
            if not c.get("resources"):
                c["resources"] = RESOURCES
        patch.spec["containers"] = containers
