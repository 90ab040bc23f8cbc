"""The documentation as a reader meets it: the README is a front door (what it proves and how
to run it on the first screen, short, every link alive), and the reference's tables of options
and topology fields are the code's own (`scripts/docs.py` makes them; a stale one fails here)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_the_generated_tables_are_the_codes():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    first_screen = "\n".join(lines[:16])
    assert "make conformance" in first_screen and "make test" in first_screen
    assert "## What it proves" in "\n".join(lines[:30])
    assert "clusterproof run --topology" in README.read_text()


def test_every_link_in_the_readme_and_the_docs_leads_somewhere():
    for page in [README, *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), (page.name, target)
