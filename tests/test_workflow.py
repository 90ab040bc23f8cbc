"""The GitHub workflow, checked as far as a machine without GitHub allows: it is valid against
GitHub's own workflow schema (as check-jsonschema ships it), and every make target and script
its steps run exists here. CI runs the same commands (.ci/run is `make test`)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"


def test_the_workflow_is_valid_against_githubs_schema():
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_make_target_and_script_the_workflow_runs_exists():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    runs = " ".join(step["run"] for job in jobs.values() for step in job["steps"] if "run" in step)
    targets = set(re.findall(r"\bmake (\w[\w-]*)", runs))
    defined = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    assert targets and targets <= defined, targets - defined
    scripts = set(re.findall(r"(?:^|\s)(\.?[\w-]+/[\w./-]+)", runs))
    assert scripts, runs
    for script in scripts:
        path = ROOT / script
        assert path.is_file() and os.access(path, os.X_OK), script


TEMPLATES = {ROOT / "action.yml": "vendor.github-actions",
             ROOT / "ci" / "gitlab" / "clusterproof.gitlab-ci.yml": "vendor.gitlab-ci"}


def test_the_ci_templates_are_valid_against_their_published_schemas():
    for template, schema in TEMPLATES.items():
        done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
                               str(template)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (template.name, done.stdout + done.stderr)


def test_the_ci_templates_call_run_with_options_it_has():
    from harness.cli import build_parser

    parser = build_parser()
    [run] = [a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "run"]  # noqa: SLF001
    known = {o for action in run[1]._actions for o in action.option_strings}  # noqa: SLF001
    for template in TEMPLATES:
        text = template.read_text()
        assert "clusterproof run --topology" in text, template.name
        command = text.split("clusterproof run --topology", 1)[1].split("||")[0]
        command = "\n".join(command.splitlines()[:4])  # the command's lines, not what follows it
        used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-m)\b", command))
        assert used <= known, (template.name, used - known)
