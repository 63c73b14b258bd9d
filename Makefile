# One-command entry points of the course. See README.md.
VENV   ?= .venv
PY     := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONPATH := $(CURDIR)

SUBMISSIONS ?= build/demo/submissions
OUT         ?= build/demo/out
DASK        ?=

.PHONY: setup release student-kit test test-fast demo grade check serve

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	@# pip 26 resolves these pins in 8 s, the pip 23 that Python 3.11's venv brings in 21 s.
	$(PY) -m pip install -q pip==26.3
	@# pip byte-compiles on one core; compileall uses every core (setup 18 s shorter on two).
	@# Like pip, it leaves uncompiled the odd file that is not Python 3.11 (a torch test helper);
	@# it leaves the packages' own tests/ folders too: nothing here imports them (19 s -> 15 s).
	$(PY) -m pip install -q --no-compile -r requirements.txt
	$(PY) -m compileall -q -j 0 -x '/tests/' "$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")" >/dev/null || true
	@# `$(PY) -m autograder` works from any folder, without activating the venv
	$(PY) -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'gpt-course.pth').write_text('$(CURDIR)\n')"
	@if ! command -v bwrap >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq bubblewrap)) \
	      || echo "bubblewrap not installed: grading will need --unsafe-no-sandbox"; \
	  else echo "bubblewrap (bwrap) not found: install it for sandboxed grading"; fi; \
	fi
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq $$missing >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $$missing >/dev/null)) \
	      || echo "not installed:$$missing (their tests will be skipped)"; \
	  else echo "not found:$$missing (PostgreSQL and browser tests will be skipped)"; fi; \
	fi
	touch $@

# nbgrader's release of source/gpt, plus the lessons of notebooks/ (tools/release.py)
release: setup
	$(PY) -m autograder.kit
	$(PY) tools/release.py

student-kit: setup
	$(PY) tools/student_kit.py build/student-kit.zip

# Three test processes on two cores, a group at a time (pytest-xdist): a group is a file, or
# the files that read one graded class (conftest.py). Many tests wait (kernels that time out,
# servers and browsers starting, grading runs setting up): with two processes a core was idle
# a fifth of the time, with three 4 % (8 min 23 s against 7 min 0 s for the same suite).
test: setup
	$(PY) -m pytest -n 3 --dist loadgroup

# The fast layer alone: in-process logic, no kernels, no grading runs (under a minute).
test-fast: setup
	$(PY) -m pytest -m "not slow" tests

demo: setup
	$(PY) -m autograder demo --out "$(OUT)"

grade: setup
	$(PY) -m autograder grade "$(SUBMISSIONS)" --out "$(OUT)" $(if $(DASK),--dask "$(DASK)")

# The submission service (README «Submission service»): SERVE_ARGS for --policy, --port, --db-url ...
SERVICE_OUT ?= build/service
serve: setup
	$(PY) -m autograder serve --out "$(SERVICE_OUT)" $(SERVE_ARGS)

NOTEBOOKS ?= $(wildcard release/gpt/0[1-5]_*.ipynb)
check: setup
	$(PY) -m autograder check $(NOTEBOOKS)
