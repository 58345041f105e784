# One image for every role: the Prefect Kubernetes worker, the flow-run Jobs
# (`prefect flow-run execute`), the `video-ingest apply` hook and the optional
# in-chart Prefect server (with prefect-redis for its Redis messaging).
#
# Builds with Docker's classic builder (no BuildKit features).
#   docker build -t video-ingest:0.1.0 .
# Offline (no PyPI from inside the build; wheels built first by
# hack/build-wheelhouse.sh for the same PYTHON_IMAGE):
#   docker build --build-arg PYTHON_IMAGE=video-ingest-local/python:3.13-trixie \
#     --build-arg PIP_INSTALL_ARGS="--no-index --find-links=/wheels" -t video-ingest:0.1.0 .
ARG PYTHON_IMAGE=python:3.13-slim

FROM ${PYTHON_IMAGE} AS build
ARG PIP_INSTALL_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY wheelhouse/ /wheels/
# Every dependency (pip and the build backend too) at the version and with the
# hashes in requirements.lock (`make lock`), wheels only: nothing unpinned,
# nothing built from source. The lock is complete, so pip resolves nothing
# (--no-deps): a newer release of a dependency on PyPI cannot reach the build.
# pip compiles every module as it installs, so pods with a read-only root
# filesystem start from bytecode.
COPY requirements.lock /src/
# hadolint ignore=DL3042
RUN python3 -m venv /opt/video-ingest \
    && /opt/video-ingest/bin/pip install --quiet ${PIP_INSTALL_ARGS} --require-hashes --no-deps --only-binary=:all: \
       -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY src/ /src/src/
# The project itself, against the locked dependencies only; `pip check` fails
# the build when the lock no longer satisfies pyproject.toml.
# hadolint ignore=DL3042
RUN /opt/video-ingest/bin/pip install --quiet --no-index --no-deps --no-build-isolation /src \
    && /opt/video-ingest/bin/pip check \
    && /opt/video-ingest/bin/pip uninstall --quiet --yes pip

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="video-ingest" \
      org.opencontainers.image.description="Bulk video ingestion on Prefect 3 and Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/video-ingest /opt/video-ingest
# A fixed non-root UID; HOME and PREFECT_HOME are writable by it (the chart mounts
# emptyDirs there when the root filesystem is read-only).
RUN mkdir -p /home/app/.prefect \
    && chown -R 10001:10001 /home/app
ENV PATH=/opt/video-ingest/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/home/app \
    PREFECT_HOME=/home/app/.prefect \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/app
USER 10001:10001
CMD ["video-ingest", "--help"]
