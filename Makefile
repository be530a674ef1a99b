# actmatch_lite: every target sets up .venv itself (idempotent; fast when already there).
PYTHON ?= python3.11
# One thread by default: the small tensors here run faster on one, and the committed notebook outputs were
# computed with one (mask training is sensitive to float summation order). Override: make test OMP_NUM_THREADS=2
export OMP_NUM_THREADS ?= 1
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NBVAL  := --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg --nbval-current-env

.PHONY: setup test test-fast lab demo notebooks student bench lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

## The whole suite: unit tests, then every notebook under nbval.
test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest tests notebooks $(NBVAL)

## Unit tests only, without the slow ones (no notebooks, no student copies), for a quick loop while editing.
test-fast: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest tests -q -m "not slow"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

## The package's main job on its bundled defaults.
demo: $(STAMP)
	$(PY) -m actmatch_lite demo --out demo_out

## Re-execute every notebook top to bottom in place (what is committed).
notebooks: $(STAMP)
	MPLBACKEND=Agg $(PY) -m actmatch_lite notebooks execute notebooks/[0-9]*.ipynb

## Student copies: solutions replaced by their `# STUB:` skeletons (or a stub), outputs cleared, written to student/.
student: $(STAMP)
	$(PY) -m actmatch_lite notebooks student notebooks/[0-9]*.ipynb --out student

bench: $(STAMP)
	$(PY) -m actmatch_lite bench shapes --json benchmarks/shapes.json

## Regenerate the exact pins from a fresh resolve of pyproject.toml.
lock:
	rm -rf /tmp/actmatch-lock && $(PYTHON) -m venv /tmp/actmatch-lock
	/tmp/actmatch-lock/bin/pip install -q --upgrade pip
	/tmp/actmatch-lock/bin/pip install -q -e '.[imagenet,notebooks,dev]'
	(echo "# Exact pins used by 'make' and CI. Regenerate with: make lock"; \
	 /tmp/actmatch-lock/bin/pip freeze --all --exclude-editable | grep -v -E '^(actmatch|pip==)') > requirements.lock

clean:
	rm -rf $(VENV) student demo_out .pytest_cache
