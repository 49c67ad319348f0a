# The two commands of the README: `make book` and `make test`.
# Both create (or reuse) the virtual environment .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MATHJAX_VERSION := 3.2.2
MATHJAX := book/_mathjax/mathjax/tex-svg.js
JB_FLAGS := --config book/_config.yml --toc book/_toc.yml --path-output book -W -n --keep-going
# The book and the chapters run on whatever JAX finds (a GPU when jax[cuda12] is installed: pip install -e ".[gpu]");
# the tests pin the CPU, where their expected numbers were recorded.
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book catalogues test lint chapter expected reproduce clean-book benchmarks help chromium assignments grade zoo

help:
	@echo "make book        build the book (executes every chapter, standard profile) -> book/_build/html/index.html,"
	@echo "                 and its Korean edition from the same outputs -> book/_build/html/ko/index.html"
	@echo "make catalogues  after editing a chapter's text: update the Korean catalogues book/locales/ko (then translate)"
	@echo "make test        lint + unit tests + every chapter in the quick profile + browser test"
	@echo "make chapter NB=chapters/03_heatmap.ipynb PROFILE=quick   run one chapter with papermill"
	@echo "make expected PROFILE=quick   re-run the chapters and store their numbers as the expected values"
	@echo "make reproduce   after make book: compare its recorded numbers with tests/expected (standard profile)"
	@echo "make benchmarks  run every benchmark script (quick settings)"
	@echo "make zoo         retrain every zoo model with its recipe (resumable; hours on a CPU) -> zoo/"
	@echo "make assignments write student notebooks + autograders to assignments/ (hand out assignments/student/)"
	@echo "make grade SUBMISSIONS=dir   grade returned notebooks -> scores.csv (student, assignment, question, score)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[book,test,teach]"
	touch $(STAMP)

# MathJax comes from the npm registry at build time (never from a CDN, never committed).
$(MATHJAX):
	rm -rf book/_mathjax && mkdir -p book/_mathjax
	cd book/_mathjax && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null \
	  && tar xzf mathjax-$(MATHJAX_VERSION).tgz && mv package/es5 mathjax && rm -rf package mathjax-*.tgz

# Two editions from one source: the English build executes the chapters; the Korean one (book/locales/ko)
# reuses their outputs from the jupyter-cache and never executes a chapter.
book: $(STAMP) $(MATHJAX)
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	$(BIN)/python book/i18n.py html --language ko
	@echo "open book/_build/html/index.html (English) or book/_build/html/ko/index.html (한국어)"

# After editing a chapter's text: extract the English messages and merge them into book/locales/ko/**.po
# (new ones untranslated, changed ones fuzzy); translate those, then `python book/i18n.py check`.
catalogues: $(STAMP)
	$(BIN)/python book/i18n.py gettext
	$(BIN)/python book/i18n.py update
	-$(BIN)/python book/i18n.py check

clean-book:
	rm -rf book/_build

lint: $(STAMP)
	$(BIN)/ruff check .

# The browser test needs Chromium (Debian package `chromium`) and, for the Korean edition, a font with Hangul
# (`fonts-noto-cjk`); install them when they are missing and we may.
chromium:
	@{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } && \
	  { ! command -v fc-list >/dev/null 2>&1 || fc-list | grep -q "Noto Sans CJK"; } || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	    else echo "install Chromium and a Korean font first: sudo apt-get install chromium fonts-noto-cjk"; exit 1; fi; }

test: $(STAMP) $(MATHJAX) chromium
	$(BIN)/ruff check .
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -ra --durations=15 -n 2 --dist loadfile  # two workers: tests/conftest.py

PROFILE ?= quick
chapter: $(STAMP)
	@test -n "$(NB)" || (echo "usage: make chapter NB=chapters/NN_name.ipynb [PROFILE=quick]"; exit 2)
	$(BIN)/papermill $(NB) $(basename $(NB)).$(PROFILE).out.ipynb -p PROFILE $(PROFILE) --cwd chapters

expected: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python -m tests.refresh_expected --profile $(PROFILE)

# Did the last `make book` reproduce the book's numbers? A table: name, expected, got, tolerance, ok.
reproduce: $(STAMP)
	JAX_PLATFORMS=cpu $(BIN)/python -m tests.reproduce --profile standard

benchmarks: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

# The model zoo: every long-trained model the chapters load, retrained from its recipe (runs are cached and
# resume when interrupted; the files and zoo/manifest.json are rewritten as each model finishes).
zoo: $(STAMP)
	$(BIN)/posekit zoo train --all

# Coursework (the preface's "For teachers"): student notebooks and otter-grader autograders from the chapters.
assignments: $(STAMP)
	$(BIN)/posekit assign --out assignments

SUBMISSIONS ?= submissions
grade: $(STAMP)
	$(BIN)/posekit grade $(SUBMISSIONS) --autograders assignments/autograder --out scores.csv
