# syntax=docker/dockerfile:1
# tenantguard admission webhook: the runtime the Helm chart (charts/tenantguard) expects.
#   docker build -t ghcr.io/tenantguard/tenantguard:0.1.0 .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build: a self-contained virtualenv with the package and its wheels --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/tenantguard
WORKDIR /src
# Metadata first so the dependency layer is cached across source changes.
COPY pyproject.toml README* ./
COPY webhook ./webhook
# Every dependency ships manylinux wheels for x86_64 and arm64: no compiler needed.
# pip byte-compiles while installing, so the read-only root filesystem never
# needs a __pycache__ at run time.
RUN /opt/tenantguard/bin/pip install . \
 && /opt/tenantguard/bin/tenantguard --version

# --- runtime --------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="tenantguard" \
      org.opencontainers.image.description="Per-tenant Kubernetes admission webhook" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/tenantguard /opt/tenantguard
ENV PATH=/opt/tenantguard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The chart mounts policies (ConfigMap) and tls.crt/tls.key (Secret) here.
RUN mkdir -p /etc/tenantguard/policies /etc/tenantguard/tls
WORKDIR /tmp
# Numeric, so Kubernetes can verify runAsNonRoot without /etc/passwd.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["tenantguard"]
# Exactly the arguments the chart's Deployment passes (it spells them out too).
CMD ["serve", "--policies", "/etc/tenantguard/policies", "--cert", "/etc/tenantguard/tls/tls.crt", "--key", "/etc/tenantguard/tls/tls.key", "--port", "8443", "--in-cluster"]
