"""The ceiling of our stack: an aiohttp webhook on uvloop that does nothing but the wire work.

It reads the body, ``orjson``-decodes it and answers a fixed allowed AdmissionReview for its
uid, over the same TLS as `tenantguard serve` (one process, one event loop, keep-alive):

    .venv/bin/python bench/echo_server.py --port 9443 --cert tls.crt --key tls.key

Used by bench/speed.py as the "echo" row: what aiohttp + TLS + orjson cost per request
before any policy is looked at. Any POST path answers; GET /readyz answers 200.
"""

from __future__ import annotations

import argparse
import ssl

import orjson
import uvloop
from aiohttp import web


async def review(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    uid = body["request"]["uid"]
    answer = {"apiVersion": body.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview",
              "response": {"uid": uid, "allowed": True}}
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


async def ready(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    app = web.Application()
    app.add_routes([web.post("/{path:.*}", review), web.get("/readyz", ready)])
    web.run_app(app, host=args.host, port=args.port, ssl_context=context, access_log=None,
                print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
