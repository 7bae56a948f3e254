# One image per service, from the same file:
#   docker build --build-arg SERVICE=extractor -t docflow-extractor .
# Each image installs only its own package and dependencies from uv.lock
# (`uv sync --package`), runs as a non-root user and keeps state under /data.
#
# Not built in CI yet: the CI machines have no Docker engine. Building and
# validating the images and docker-compose.yml is issue 8.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "build with --build-arg SERVICE=gateway|status|extractor|embedder" && false)
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Every workspace member's project file is needed to read the lock; only the
# chosen service (and shared) is installed.
COPY pyproject.toml uv.lock ./
COPY shared shared
COPY services services
COPY deploy/local/pyproject.toml deploy/local/pyproject.toml
COPY deploy/local/src deploy/local/src
RUN uv sync --frozen --no-dev --no-editable --package docflow-${SERVICE}

FROM ${PYTHON_IMAGE}
ARG SERVICE
RUN useradd --create-home --uid 10001 docflow \
    && mkdir -p /data/blobs \
    && chown -R docflow:docflow /data
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    DOCFLOW_HOST=0.0.0.0 \
    DOCFLOW_DATA_DIR=/data \
    DOCFLOW_SERVICE=${SERVICE}
USER docflow
WORKDIR /data
CMD ["sh", "-c", "exec docflow-${DOCFLOW_SERVICE}"]
