# The README's two commands are `make conformance` and `make test`; both set the machine up first.
# Extra pytest arguments go in ARGS, e.g. make conformance ARGS="--backend local -m failover".

VENV := .venv
PYTEST := $(VENV)/bin/pytest
RESULTS := reports/allure-results
HTML := reports/allure-report

.PHONY: setup conformance test test-trixie zoo report clean

setup:
	@bash scripts/setup.sh

## The main job: conformance scenarios on the embedded reference cluster, then the Allure report.
conformance: setup
	@status=0; $(PYTEST) scenarios/ --alluredir=$(RESULTS) --clean-alluredir $(ARGS) || status=$$?; \
	$(VENV)/bin/harness report $(RESULTS) -o $(HTML) || status=$${status:-1}; \
	exit $$status

## The harness's own tests: units, properties, the reference cluster, and the mutant kills,
## WORKERS at a time (pytest-xdist; tests holding what the host has one of run one by one).
## Three on two cores: the cluster tests mostly wait on their clusters (measured: 51.5 min of
## tests in 17 min 48 s, where two workers would need 26 at best; reports/bench.md).
WORKERS ?= 3
test: setup
	$(PYTEST) tests/ -n $(WORKERS) --dist loadgroup $(ARGS)

## Every zoo member (tests/zoo/) in every configuration through the whole suite: the verdict
## table in reports/zoo/ (not in .ci/run: `make test` runs one sound and one broken of each).
zoo: setup
	$(VENV)/bin/python tests/zoo/table.py $(ARGS)

## The same tests (minus the docker backend) and the local conformance suite under Debian 13's
## Python 3.13, in a chroot (not in .ci/run: it takes as long again).
test-trixie:
	@bash scripts/test-trixie.sh

report:
	$(VENV)/bin/harness report $(RESULTS) -o $(HTML)

clean:
	-$(VENV)/bin/harness down
	rm -rf $(RESULTS) $(HTML)
