# The README's two commands are `make conformance` and `make test`; both set the machine up first.
# Extra pytest arguments go in ARGS, e.g. make conformance ARGS="--backend local -m failover".

VENV := .venv
PYTEST := $(VENV)/bin/pytest
RESULTS := reports/allure-results
HTML := reports/allure-report

.PHONY: setup conformance test report clean

setup:
	@bash scripts/setup.sh

## The main job: conformance scenarios on the embedded reference cluster, then the Allure report.
conformance: setup
	@status=0; $(PYTEST) scenarios/ --alluredir=$(RESULTS) --clean-alluredir $(ARGS) || status=$$?; \
	$(VENV)/bin/harness report $(RESULTS) -o $(HTML) || status=$${status:-1}; \
	exit $$status

## The harness's own tests: units, properties, the reference cluster, and the mutant kills.
test: setup
	$(PYTEST) tests/ $(ARGS)

report:
	$(VENV)/bin/harness report $(RESULTS) -o $(HTML)

clean:
	-$(VENV)/bin/harness down
	rm -rf $(RESULTS) $(HTML)
