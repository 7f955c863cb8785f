# The two commands of the README. Both install what they need first; heavy builds are cached
# outside the work tree (~/.cache/jupyter-mldeploy), so only the first run on a machine is slow.
PYTHON ?= python3
STAMP := .venv-stamp

.PHONY: demo test install lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PYTHON) -m jupyter_mldeploy demo

test: $(STAMP)
	$(PYTHON) -m ruff check jupyter_mldeploy tests bench
	$(PYTHON) -m jupyter_mldeploy sandbox build
	$(PYTHON) -m pytest

bench: $(STAMP)
	$(PYTHON) -m bench
