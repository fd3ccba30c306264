# Fovea, CPU image.  Build:  docker build -t fovea:cpu .
#                    Run:    docker run --rm -p 8000:8000 fovea:cpu
#
# Two stages: `build` resolves and installs everything into a virtualenv (it is the only stage that
# talks to a package index and the only one that ever sees a custom CA bundle); `runtime` is the
# bare base image plus that virtualenv, tini and the model store. No torch, no compilers, no pip.
#
# Build arguments
#   BASE_IMAGE   any Debian-family image with python3.11 and the venv module; both stages use it,
#                so the virtualenv's interpreter path stays valid (default: the official slim image;
#                tests/docker/build_base.sh makes a local one when no registry can be reached).
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   alternative package indexes (build stage only).
# Custom CA (TLS-intercepting proxies): put the PEM bundle at ./build-ca.pem before building. It is
# copied into the build stage only and handed to pip as PIP_CERT; the runtime stage never sees it.
# The legacy builder has no build secrets, hence the optional-file COPY below.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=120

# tini (PID 1: forwards signals, reaps zombies) comes from Debian; only its binary is kept.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# pyproject.toml always matches, so the optional CA bundle may be absent.
COPY pyproject.toml build-ca.pem* /src/
WORKDIR /src

# Dependencies first (a layer that survives source edits): read them out of pyproject.toml.
RUN python3 -m venv /opt/venv \
    && if [ -f /src/build-ca.pem ]; then export PIP_CERT=/src/build-ca.pem; fi \
    && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

COPY README.md /src/
COPY serving /src/serving
COPY export /src/export
COPY loadtest /src/loadtest
RUN if [ -f /src/build-ca.pem ]; then export PIP_CERT=/src/build-ca.pem; fi \
    && /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip uninstall -y setuptools pip \
    && /opt/venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)"

# The model store, readable by the runtime user whatever modes the files had on the host
# (normalised here, so the runtime stage gets a single layer of it).
COPY model_store /models
RUN chmod -R u=rwX,go=rX /models


FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="fovea" \
      org.opencontainers.image.description="Batched ONNX Runtime inference server for vision models (CPU)" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --gid 10001 fovea \
    && useradd --uid 10001 --gid fovea --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin fovea

COPY --from=build /usr/bin/tini /usr/bin/tini
COPY --from=build /opt/venv /opt/venv
# Baked-in models; mount another store over /models, or elsewhere with FOVEA_MODEL_STORE.
COPY --from=build /models /models

# ORT_DISABLE_TELEMETRY: no telemetry from a server (and no device-id file in a read-only home).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORT_DISABLE_TELEMETRY=1 \
    FOVEA_HOST=0.0.0.0 \
    FOVEA_PORT=8000 \
    FOVEA_MODEL_STORE=/models \
    FOVEA_LOG_LEVEL=info \
    FOVEA_GRACEFUL_SHUTDOWN_S=20

USER 10001:10001
WORKDIR /tmp
EXPOSE 8000

# Ready = every model finished loading; urlopen raises (exit 1) on 503 or no answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('FOVEA_PORT', '8000'), timeout=2)"]

# SIGTERM: uvicorn stops accepting, drains in-flight requests for up to FOVEA_GRACEFUL_SHUTDOWN_S,
# then re-raises SIGTERM on itself; tini maps that 143 to 0 (-e 143). Give `docker stop -t` more
# than the grace period.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "-e", "143", "--", "fovea"]
CMD ["serve"]
