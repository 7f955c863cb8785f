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

# Debian's Chromium for the one real-browser test, iproute2 for the network namespaces and the real
# node's bridge, and what the real data plane is built and run with (runc's seccomp headers, the CNI
# plugins, mmdebstrap for the model server's root filesystem, a static busybox and gcc for the test and
# pause images); installed only when missing and when we may (root).
DEBS := chromium iproute2 containernetworking-plugins mmdebstrap libseccomp-dev pkg-config busybox-static \
        gcc libc6-dev
system-deps:
	@if command -v dpkg-query >/dev/null; then \
	  missing=""; for p in $(DEBS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "note:$$missing missing and not root: the browser, netns and real data plane tests will be skipped"; fi; \
	  fi; \
	fi

demo: $(STAMP)
	$(PY) -m jupyter_mldeploy demo

test: $(STAMP) system-deps
	$(PY) -m ruff check jupyter_mldeploy tests bench
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m jupyter_mldeploy sandbox build --knative
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/bench_deploy.py
	$(PY) bench/bench_rollout.py
	$(PY) bench/bench_slider.py
	$(PY) bench/bench_shadow.py
	$(PY) bench/bench_status_view.py
	$(PY) bench/bench_serving.py
	$(PY) bench/bench_import.py
