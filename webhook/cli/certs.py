"""`tenantguard certs`: a CA and the webhook's serving certificate.

    tenantguard certs --service tenantguard --namespace tenantguard-system [--out certs]
                      [--key-type ecdsa|rsa] [--days 365] [--ca-days 3650] [--rotate-ca]
                      [--output files|secret] [--secret-name NAME]

Run it again to renew: the CA found in ``--out`` is kept and only the serving
pair is re-issued, so the ``caBundle`` in the webhook configurations stays valid.
``--rotate-ca`` replaces the CA too (then the caBundle must be updated).

``--output secret`` still writes the files (the CA must survive for the next
renewal) and prints a ``kubernetes.io/tls`` Secret to stdout, ready for
``kubectl apply -f -``, headed by a comment line with the base64 caBundle.

Exit codes: 0 written; 2 bad input or unusable files in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from webhook.actions.certs import (
    CertBundle,
    CertError,
    CertOptions,
    ca_bundle,
    ensure_certificates,
    secret_manifest,
)
from webhook.inputs.yamlio import dump

NAME = "certs"
HELP = "generate a CA and serving certificate for the webhook"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, help="name of the webhook's Service")
    parser.add_argument("--namespace", required=True, help="namespace of the webhook's Service")
    parser.add_argument("--out", type=Path, default=Path("certs"), help="output directory (default: certs)")
    parser.add_argument(
        "--key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="ECDSA P-256 (default) or RSA 2048"
    )
    parser.add_argument(
        "--days", type=int, default=365, help="validity of the serving certificate (default 365)"
    )
    parser.add_argument("--ca-days", type=int, default=3650, help="validity of a new CA (default 3650)")
    parser.add_argument(
        "--rotate-ca",
        action="store_true",
        help="replace the CA found in --out (the webhook configurations' caBundle must then be updated)",
    )
    parser.add_argument(
        "--output",
        choices=("files", "secret"),
        default="files",
        help="files: summary only; secret: also print a kubernetes.io/tls Secret YAML and the caBundle",
    )
    parser.add_argument(
        "--secret-name", help="name of the Secret printed by --output secret (default SERVICE-tls)"
    )


def _summary(bundle: CertBundle, options: CertOptions) -> str:
    ca_state = "kept" if bundle.ca_reused else "new"
    return "\n".join(
        [
            f"{bundle.ca_path}: CA ({ca_state}), valid until {bundle.ca_not_after:%Y-%m-%d}",
            (
                f"{bundle.cert_path}: serving certificate for {', '.join(options.hosts)}, "
                f"valid until {bundle.not_after:%Y-%m-%d}"
            ),
            f"{bundle.key_path}, {bundle.ca_key_path}: private keys (0600, keep them out of git)",
            f"caBundle: {ca_bundle(bundle.ca_pem)}",
        ]
    )


def run(args: argparse.Namespace) -> int:
    try:
        options = CertOptions(
            service=args.service,
            namespace=args.namespace,
            key_type=args.key_type,
            days=args.days,
            ca_days=args.ca_days,
            rotate_ca=args.rotate_ca,
        )
        bundle = ensure_certificates(options, args.out)
    except OSError as exc:
        raise CertError(f"{exc.filename or args.out}: {exc.strerror}") from None
    requested_end = bundle.ca_not_after
    if bundle.not_after >= requested_end:
        print(
            f"tenantguard certs: warning: the serving certificate ends with the CA on {requested_end:%Y-%m-%d}; "
            "plan a --rotate-ca before then",
            file=sys.stderr,
        )
    if args.output == "secret":
        name = args.secret_name or f"{options.service}-tls"
        manifest = secret_manifest(name, options.namespace, bundle)
        sys.stdout.write(
            f"# caBundle (webhook configurations / certs.existingSecret.caBundle): {ca_bundle(bundle.ca_pem)}\n"
        )
        sys.stdout.write("---\n")
        sys.stdout.write(dump(manifest))
        print(_summary(bundle, options), file=sys.stderr)
    else:
        print(_summary(bundle, options))
    return 0
