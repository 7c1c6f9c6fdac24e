# syntax=docker/dockerfile:1
#
# The kadence operator image.
#
#   docker build -t kadence:0.1.0 .
#
# Two stages: the builder turns the project and its dependencies into wheels;
# the final stage installs only those wheels, with no compiler, no sources and
# no pip cache, and runs as an unprivileged numeric user so that Kubernetes can
# verify runAsNonRoot. Nothing is written outside /tmp at run time, so the
# container works with readOnlyRootFilesystem (the Helm chart mounts an
# emptyDir at /tmp).

# Pinned by version; bump both stages together.
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the wheel is built from (see .dockerignore).
COPY pyproject.toml README.md ./
COPY operator/ ./operator/
# One wheel for kadence and one for each dependency, pure Python or manylinux.
RUN pip wheel --wheel-dir /wheels .


FROM python:3.11.14-slim-bookworm

LABEL org.opencontainers.image.title="kadence" \
      org.opencontainers.image.description="Flexible scheduling for Kubernetes: Schedules, a priority queue of Tasks, run as Jobs." \
      org.opencontainers.image.licenses="Apache-2.0"

# No .pyc files at run time (the root filesystem is read-only); unbuffered logs;
# HOME in the one writable place, for any library that looks there.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp

# Install from the builder's wheels only (--no-index: nothing fetched here),
# without copying the wheels into a layer; then drop the packaging tools that
# the base image ships and the operator does not use. pip compiles the .pyc
# files now, at build time, so that imports need no writes later.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/kadence-*.whl \
    && pip uninstall --yes setuptools wheel

# 65532 is the conventional "nonroot" uid/gid (as in distroless images).
USER 65532:65532
WORKDIR /tmp

# Liveness (/healthz) and Prometheus metrics (/metrics).
EXPOSE 8080 9090

ENTRYPOINT ["kadence"]
CMD ["run", "--config", "/etc/kadence/config.yaml"]
