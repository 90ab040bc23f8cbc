"""`clusterproof image`: the harness's own container image, built from this checkout.

The `Dockerfile` at the checkout's top starts `FROM debian:bookworm-slim` and installs the
wheel with its dependencies from a wheelhouse made here (containers reach no package index),
at the versions this environment runs, beside the Toxiproxy server set-up built and Debian's
iptables. Built through the same path as the cluster's images: the Debian base pulled where a
registry answers, else made with debootstrap; tagged `clusterproof:<version>` and by the
digest of everything that went in, so a second build finds it.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from harness.cluster import images
from harness.errors import HarnessError
from harness.version import DISTRIBUTION, VERSION

CHECKOUT = Path(__file__).resolve().parents[1]
DOCKERFILE = CHECKOUT / "Dockerfile"


def checkout_copy(into: Path) -> Path:
    """The checkout's files as git sees them (tracked, and new ones not ignored), copied:
    building in the checkout itself would leave setuptools' build/ and egg-info there."""
    if not (CHECKOUT / "pyproject.toml").is_file():
        raise HarnessError("`clusterproof image` builds from a checkout of the project (its "
                           "Dockerfile and pyproject.toml); this harness was installed from a wheel")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=CHECKOUT, capture_output=True, text=True, check=True).stdout
    for name in filter(None, listed.split("\0")):
        if (CHECKOUT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CHECKOUT / name, into / name)
    return into


def build_wheel(out: Path, sdist: bool = False) -> Path:
    """The distribution's wheel (and, asked, its sdist), built from a copy of the checkout
    (`python -m build`)."""
    with tempfile.TemporaryDirectory(prefix="clusterproof-source-") as source:
        done = subprocess.run([sys.executable, "-m", "build", *([] if sdist else ["--wheel"]),
                               "--outdir", str(out), str(checkout_copy(Path(source)))],
                              capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise HarnessError(f"building the wheel failed: {done.stderr.strip()[-300:]}")
    return next(out.glob(f"{DISTRIBUTION}-*.whl"))


def _requirements(wheel: Path) -> list[str]:
    """What the wheel requires to run (its Requires-Dist, the extras' left out)."""
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        fields = email.parser.Parser().parsestr(z.read(name).decode())
    return sorted(r for r in fields.get_all("Requires-Dist") or [] if "extra ==" not in r)


def _constraints() -> tuple[str, ...]:
    """Every distribution this environment runs, at its version (but ours)."""
    return tuple(sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                        if d.metadata["Name"] and d.metadata["Name"].lower() != DISTRIBUTION))


def build(wheel: Path | None = None) -> str:
    """The image's tag (`clusterproof:<version>` points at it too)."""
    binary = shutil.which("toxiproxy-server")
    if binary is None:
        raise HarnessError("toxiproxy-server is not installed; run scripts/setup.sh")
    c = images.client()
    with tempfile.TemporaryDirectory(prefix="clusterproof-image-") as scratch:
        wheel = wheel or build_wheel(Path(scratch))
        needs = [*_requirements(wheel), *images.CONTAINER_ONLY_REQUIREMENTS]  # Debian's Python
        dependencies = images.wheelhouse(needs, _constraints(), "the clusterproof image")
        files = {f"wheels/{w.name}": w for w in sorted(dependencies.glob("*.whl"))}
        files[f"wheels/{wheel.name}"] = wheel
        files["toxiproxy-server"] = Path(binary)
        tag = images.build_image(c, DOCKERFILE, files, images.ensure_base(c), DISTRIBUTION, "clusterproof")
    c.images.get(tag).tag(DISTRIBUTION, VERSION)
    return tag
