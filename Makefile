# forkshare — every target creates .venv and installs what it needs by itself.
# The package is installed editable in setuptools' strict mode (a tree of symlinks under build/),
# so mypy sees the real `forkshare.*` names; adding or removing a module re-installs (the stamp
# depends on the source folders, whose mtime changes when a file is added or removed).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCES := cli model impl proofs conformance conformance/observe conformance/strace conformance/verify \
	conformance/verify/profiles conformance/verify/targets
PROFILE ?= $(if $(CI),ci,dev)
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck docs docs-po pictures verdicts bench install system-packages clean help

help:
	@echo "make demo       the guided tour: how the workers share the master's socket, live (under a minute)"
	@echo "make test       the whole test suite (Hypothesis profile: $(PROFILE); set PROFILE=thorough for more)"
	@echo "make lint       ruff and mypy --strict"
	@echo "make docs       build the Sphinx docs with -W -n: English (docs/_build/html), Japanese (docs/_build/html/ja)"
	@echo "make docs-po    refresh the Japanese gettext catalogs after the English text changed"
	@echo "make pictures   redraw the docs' pictures of what is shared, from live servers (docs/_static/pictures)"
	@echo "make verdicts   re-record the verifier's verdict on every bundled target (docs/verdicts, ~10 min)"
	@echo "make bench      explorer states/s, proof suite time, server requests/s"
	@echo "make system-packages  install the missing Debian packages of .ci/system-packages.toml"
	@echo "                (demo and test run it first; as root it runs apt-get, else it names them)"

$(STAMP): pyproject.toml $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[test,lint,docs]' \
		--config-settings editable_mode=strict
	touch $(STAMP)

install: $(STAMP)

# The Debian packages the tests and the demo run (nginx, strace, chromium, …): nothing happens when
# all are there; as root, apt-get installs the missing ones; otherwise it stops, naming them (exit 2).
# A prerequisite of demo and test, listed first so that it runs before anything else.
system-packages:
	@$(PYTHON) .ci/ensure_system_packages.py

# The tour: the reference server's system calls, the kernel objects it shares, who accepts,
# a counterexample, the proofs and a short verify (forkshare demo; LANG=ja_JP.UTF-8 for Japanese).
demo: system-packages $(STAMP)
	$(BIN)/forkshare demo

test: system-packages $(STAMP)
	$(BIN)/python -m pytest --hypothesis-profile=$(PROFILE) $(PYTEST_ARGS)
	$(MAKE) docs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p forkshare
	$(BIN)/mypy tests
	$(BIN)/mypy .ci/ensure_system_packages.py docs/pictures/make_pictures.py docs/verdicts/record.py

typecheck: $(STAMP)
	$(BIN)/mypy -p forkshare

# Each language has its own doctree cache: a shared one would be rebuilt on every switch.
docs: $(STAMP)
	$(BIN)/sphinx-build -q -W -n -b html -d docs/_build/doctrees/en docs docs/_build/html
	$(BIN)/sphinx-build -q -W -n -b html -d docs/_build/doctrees/ja -D language=ja docs docs/_build/html/ja

# After the English text changes: extract the messages, merge them into the catalogs (new ones
# arrive untranslated, changed ones fuzzy), then translate them; tests/docs/test_catalogs.py
# fails until every message of the translated pages is translated and not fuzzy.
docs-po: $(STAMP)
	$(BIN)/sphinx-build -q -b gettext -d docs/_build/doctrees/gettext docs docs/_build/gettext
	$(BIN)/sphinx-intl update -p docs/_build/gettext -d docs/locale -l ja --no-obsolete -w 100

# The SVGs of docs/_static/pictures, drawn from live servers (the reference server in three modes,
# nginx); commit them after a change to the picture or to a server's sharing.
pictures: $(STAMP)
	$(BIN)/python docs/pictures/make_pictures.py

# The verdicts of the docs' comparison table: forkshare verify --target T --json for every bundled
# target, one after the other (20-60 s each), into docs/verdicts/verdicts.json; commit it with a
# line in docs/verdicts/explanations.toml for each verdict that is not "conforms".
verdicts: $(STAMP)
	$(BIN)/python docs/verdicts/record.py

bench: $(STAMP)
	$(BIN)/forkshare bench

clean:
	rm -rf $(VENV) build docs/_build .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
