# The two commands of the README. Both install what they need first, into the work tree's own
# virtual environment (.venv): the Python that runs `make` only creates it, and its site-packages are
# never touched. Heavy builds are cached outside the work tree (~/.cache/jupyter-mldeploy), so only
# the first run on a machine is slow (Knative Serving's components: about 6 minutes on 2 cores; its
# tests in tests/knative start them beside the sandbox, in about 5 s, and skip without root).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)

# The notebooks' kernel is this environment's Python: its kernelspec goes into the venv (--sys-prefix),
# which Jupyter prefers inside a venv, so nbval, papermill and the demo never start another interpreter.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the one real-browser test, and iproute2 for the service-proxy test's
# network namespace; installed only when missing and when we may (root).
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v ip >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium iproute2 >/dev/null; \
	  else echo "note: chromium or iproute2 missing and not root: the browser/netns tests will be skipped"; fi; \
	fi

demo: $(STAMP)
	$(PY) -m jupyter_mldeploy demo

test: $(STAMP) system-deps
	$(PY) -m ruff check jupyter_mldeploy tests bench
	$(PY) -m jupyter_mldeploy sandbox build --knative
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/bench_deploy.py
	$(PY) bench/bench_rollout.py
	$(PY) bench/bench_slider.py
	$(PY) bench/bench_shadow.py
	$(PY) bench/bench_status_view.py
	$(PY) bench/bench_serving.py
