# video-ingest developer entry points.
#
#   make demo    ingest 200 synthetic videos on an embedded Prefect server
#   make test    unit, integration and chart tests (what CI runs first)
#   make bench   throughput with a limit of 200: the seed pattern, .map and ours, and without limits
#   make bench-ceiling   task-run events/s the Prefect server records, per server layout

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# checkov (chart tests) lives in a virtualenv of its own: its exact pins
# (packaging<24, boto3==...) clash with prefect's and pytest's.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_VERSION ?= 3.3.30

.PHONY: help venv lock demo test test-unit test-integration test-chart e2e ui-screenshots lint checkov chart-docs \
	bench-deps bench bench-quick bench-bytes bench-ceiling bench-binding bench-python scale-submit

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

# The image's dependencies exactly as the Dockerfile installs them (requirements.lock,
# hashes checked), then the project and its dev tools on top. --no-deps: the lock is
# complete, so pip resolves nothing (pip 23.2's resolver once refused the lock in
# hash mode, taking prefect's `httpx[http2]` for an unpinned httpx 0.29.0).
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## The project's virtualenv with the dev tools

UV_VERSION ?= 0.13.9
lock: venv ## Resolve requirements.lock (pins + hashes) again from pyproject.toml; UPGRADE=1 takes newer versions
	$(PY) -m pip install --quiet 'uv==$(UV_VERSION)'
	printf 'pip\nsetuptools>=77\nwheel\n' | $(VENV)/bin/uv pip compile pyproject.toml - \
	  --extra s3 --extra http --extra redis --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command 'make lock' --output-file requirements.lock $(if $(UPGRADE),--upgrade)

# The demo's eight failing items are on purpose: `run` exits 1 (some items failed), which
# is what the demo shows, so make reports success then; any other exit code fails it.
demo: venv ## Ingest 200 synthetic videos on an embedded Prefect server (8 fail on purpose: exit 1)
	@$(VENV)/bin/video-ingest run --demo 200 --retry-delay 0; code=$$?; \
	  if [ $$code -ne 1 ]; then echo "demo: video-ingest exited $$code; expected 1 (eight items fail on purpose)" >&2; exit 1; fi; \
	  echo "demo: video-ingest exited 1, as intended: eight items fail for good to show a partial failure"

test: venv checkov ## Unit, integration and chart tests
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## Pure logic only, no server
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv ## Against a real Prefect server the tests start
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: venv ## End-to-end on kind: builds what is missing, brings the cluster up, installs the chart
	$(PY) -m pytest tests/e2e -v -rs $(PYTEST_ARGS)

# The README's two Prefect UI pictures, taken by the e2e's browser test (tests/e2e/prefect_ui.py)
# on a kind install of the chart: the release is installed, one bulk run made, and uninstalled.
UI_SHOTS_RUN ?= e2e-artifacts/ui-screenshots
ui-screenshots: venv ## Regenerate docs/prefect-ui-*.png from the browser test on kind (needs Debian's chromium)
	VIDEO_INGEST_ARTIFACTS=$(UI_SHOTS_RUN) $(PY) -m pytest tests/e2e/test_ingest_on_kind.py -v -rs \
	  -k "install_makes or prefect_ui_shows" $(PYTEST_ARGS)
	$(PY) tests/e2e/prefect_ui.py $(UI_SHOTS_RUN)/prefect-ui docs

test-chart: venv checkov ## The Helm chart, rendered by helm (on PATH: make tools)
	$(PY) -m pytest tests/chart $(PYTEST_ARGS)

# The benchmark starts PostgreSQL and Redis from Debian's packages on loopback.
$(VENV)/.installed-bench: $(VENV)/.installed
	command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
	  || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql redis-server)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench-deps: $(VENV)/.installed-bench ## PostgreSQL, Redis and prefect-redis for the benchmark

bench: bench-deps ## Seed pattern vs .map vs ours (with and without limits) at 2k, 5k and 20k items (~2 h on 2 cores)
	$(PY) -m bench.ingest_bench --sizes 2000,5000,20000

bench-bytes: bench-deps ## Real bytes: 2000 videos of 1 MB over HTTP to S3 (SeaweedFS) on loopback, ours vs a plain pool; all on every core, then the Prefect server on a core of its own
	$(HACK)/build-seaweedfs-image.sh >/dev/null
	$(PY) -m bench.bytes_bench --videos 2000 --mb 1
	$(PY) -m bench.bytes_bench --videos 2000 --mb 1 --server-core

bench-quick: bench-deps ## The 2k case and a 2k ceiling; last line: ratio_vs_seed=R max_concurrent=M limit=L items_per_s=X vs_map_nolimit=R2 of_server_ceiling=F
	$(PY) -m bench.ingest_bench --sizes 2000 --ceiling-items 2000

bench-binding: bench-deps ## A limit that binds: 2 batch processes x 8 threads under 8 slots, items of 5 ms; held exactly, and its cost
	$(PY) -m bench.binding_limit --limit 8 --processes 2 --threads 8 --items 600 --ms 5

scale-submit: bench-deps ## 100,001 IDs through `video-ingest submit` to a process worker pool, accounted to the item (~45 min on 2 cores)
	$(PY) -m bench.submit_scale --items 100001

bench-ceiling: bench-deps ## Task-run events/s the server records, Prefect's defaults and each chart layout, one line each
	$(PY) -m bench.server_ceiling --layouts default,chart-memory,chart-redis,chart-separate --items 2000

# The project image on Debian bookworm's Python 3.11 (the image before 3.13), beside
# today's on trixie's 3.13; each is built once and cached by its inputs.
bench-python: bench-deps ## The project image on Python 3.11 and on 3.13, back to back: the server's ceiling per layout, and 2k items (~15 min on 2 cores)
	PYTHON_VERSION=3.11 PYTHON_DEBIAN_SUITE=bookworm PROJECT_IMAGE=video-ingest:py311 $(HACK)/build-project-image.sh
	$(HACK)/build-project-image.sh
	$(PY) -m bench.server_ceiling --layouts default,chart-memory,chart-redis,chart-separate --items 2000 \
	  --server-images video-ingest:py311,video-ingest:dev
	for image in video-ingest:py311 video-ingest:dev; do \
	  $(PY) -m bench.ingest_bench --sizes 2000 --variants map-nolimit,ours,ours-nolimit --python-image $$image || exit 1; \
	done

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@

checkov: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION) ## checkov for the chart tests, in its own virtualenv

chart-docs: venv ## Regenerate the chart README's values table and k8s/ from the chart
	$(PY) hack/chart-values-table.py
	hack/render-k8s.sh


# ---------------------------------------------------------------------------
# cluster toolchain
#
# A real kind cluster, built with no container registry when none answers
# (hack/; versions in hack/versions.env; caches in $$VIDEO_INGEST_CACHE,
# default /var/cache/video-ingest). VIDEO_INGEST_AIRGAP=auto|1|0 picks between
# building every image here (1) and using the published ones (0).
# ---------------------------------------------------------------------------
HACK := hack

.PHONY: docker tools kube-binaries images node-image python-image project-image \
	cluster cluster-delete toolchain e2e-cluster postgres-image redis-image

docker: ## Install/start Docker (privileged containers working)
	$(HACK)/ensure-docker.sh

tools: docker ## kind, helm and kubectl, built from Go modules, on PATH
	$(HACK)/build-tools.sh

kube-binaries: ## kubeadm, kubelet, kubectl and the control-plane binaries
	$(HACK)/build-kube-binaries.sh

images: node-image ## Every image the kind node needs (alias of node-image)

node-image: docker ## The kind node image with all component images inside
	$(HACK)/build-node-image.sh

python-image: docker ## The Python base image the Dockerfile builds FROM
	$(HACK)/build-python-image.sh

project-image: docker ## The project image (Dockerfile), loaded into the cluster
	$(HACK)/build-project-image.sh

postgres-image: docker ## The chart's PostgreSQL image for kind (stand-in when air-gapped)
	$(HACK)/build-postgres-image.sh

redis-image: docker ## The chart's Redis image for kind (stand-in when air-gapped)
	$(HACK)/build-redis-image.sh

cluster: ## Create (or reuse) the kind cluster and wait until it is Ready
	$(HACK)/cluster-up.sh

cluster-delete: ## Delete the kind cluster (caches and images stay)
	$(HACK)/cluster-down.sh

toolchain: ## The whole chain, each stage timed: docker, tools, images, cluster
	$(HACK)/all.sh

e2e-cluster: venv cluster ## The cluster smoke tests alone (tests/e2e/test_cluster_smoke.py)
	$(PY) -m pytest -m e2e tests/e2e/test_cluster_smoke.py -v $(PYTEST_ARGS)
