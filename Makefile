# The two commands of the README. Both install what they need first; heavy builds are cached
# outside the work tree (~/.cache/jupyter-mldeploy), so only the first run on a machine is slow.
PYTHON ?= python3
STAMP := .venv-stamp

.PHONY: demo test install system-deps lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	$(PYTHON) -m ipykernel install --user --name python3 >/dev/null
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
	$(PYTHON) -m jupyter_mldeploy demo

test: $(STAMP) system-deps
	$(PYTHON) -m ruff check jupyter_mldeploy tests bench
	$(PYTHON) -m jupyter_mldeploy sandbox build
	$(PYTHON) -m pytest

bench: $(STAMP)
	$(PYTHON) bench/bench_deploy.py
	$(PYTHON) bench/bench_rollout.py
	$(PYTHON) bench/bench_slider.py
	$(PYTHON) bench/bench_shadow.py
	$(PYTHON) bench/bench_status_view.py
	$(PYTHON) bench/bench_serving.py
