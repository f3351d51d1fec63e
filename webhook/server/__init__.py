"""The admission webhook server: the shell around the pure core that a cluster talks to.

One module per concept, each small enough to read in one sitting::

    settings.py      ServerSettings: every flag of `tenantguard serve`, frozen, built by the CLI
    admission.py     answer(): the one function the server wraps: endpoint + review dict -> response dict
    app.py           aiohttp application: routes, HTTP-level checks (content type, size, JSON), metrics, logs
    policy_store.py  the live PolicySet: polled hot reload, ConfigMap symlink swaps, last good set kept
    tls.py           the live SSLContext: cert/key reloaded in place
    metrics.py       Prometheus metrics on a private registry (multiprocess-aware)
    logs.py          structured JSON logs, one line per admission
    runner.py        WebhookServer (async context manager: start, drain, stop) and one process's main
    workers.py       `--workers N`: N processes on one port (SO_REUSEPORT), signals forwarded

The cluster view the engine reads (a fixed snapshot, or list+watch of the live cluster) is
opened from webhook.views.

Two error families, as kopf draws them:

- the *object* breaks policy -> HTTP 200, ``allowed: false``, ``status.code`` 403 (a Decision);
- the *review* is malformed  -> HTTP 400 (413 when too large), a short plain-text reason.

A third case is ours: the review is well formed but evaluating it raised. The answer is
HTTP 200 in the endpoint's fail posture (``/mutate`` allows without a patch and warns,
``/validate`` denies saying why), so the API server applies the same posture whatever
its ``failurePolicy``; the error is logged and counted. Nothing a client sends yields a 500.
"""
