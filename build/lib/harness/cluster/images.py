"""Images of the docker backend, built locally from the Dockerfiles in `images/`, cached.

Each Dockerfile starts `FROM debian:bookworm-slim`. Users with registry access get the
official image; where no registry answers, the harness builds a Debian base from Debian's
packages (`debootstrap --variant=minbase`) and tags it with the official name, so the same
Dockerfiles work unchanged. Every image is tagged by a hash of everything that goes into it
(Dockerfile, context files, base image id): a second run finds the tag and builds nothing.

Containers do not reach PyPI, so the node image installs a wheelhouse made on the host with
the versions the host's environment runs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import docker
import docker.errors

from harness.errors import HarnessError
from harness.runstate import STATE_ROOT

BASE = "debian:bookworm-slim"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
IMAGES_DIR = Path(__file__).with_name("images")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
WHEEL_CACHE = Path.home() / ".cache" / "harness" / "wheels"
# What a node imports beyond the standard library: pinned to the host's versions.
NODE_REQUIREMENTS = ("pydantic", "aiohttp", "aiosmtpd", "redis")
ROLES = ("node", "haproxy", "redis", "toxiproxy")
BUILD_LOCK = STATE_ROOT / "images.lock"


def _say(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr, flush=True)


def client() -> docker.DockerClient:
    try:
        c = docker.from_env(timeout=120)
        c.ping()
    except docker.errors.DockerException:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise HarnessError(f"the Docker engine does not answer at {where}; start it with scripts/setup.sh") from None
    return c


def _has_image(c: docker.DockerClient, tag: str) -> bool:
    try:
        c.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_base(c: docker.DockerClient) -> str:
    """The id of `debian:bookworm-slim`: present, pulled, or built from Debian's packages."""
    if not _has_image(c, BASE):
        try:
            c.images.pull(BASE)
        except docker.errors.APIError:
            _build_base_from_debian()
    return c.images.get(BASE).id


def _build_base_from_debian() -> None:
    if shutil.which("debootstrap") is None:
        raise HarnessError(f"{BASE} cannot be pulled and debootstrap is not installed; run scripts/setup.sh")
    _say(f"no registry answers: building {BASE} from Debian packages (debootstrap, about a minute, once)")
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as root:
        _run(["debootstrap", "--variant=minbase", "bookworm", root, DEBIAN_MIRROR], "debootstrap")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        _run(["docker", "import", "--change", 'CMD ["bash"]', "-", BASE], "docker import", stdin=tar.stdout)
        tar.wait()


def _run(argv: list[str], what: str, stdin: object = None) -> None:
    done = subprocess.run(argv, stdin=stdin, capture_output=True, text=True)  # type: ignore[arg-type]
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise HarnessError(f"{what} failed (exit {done.returncode}): {tail}")


def _node_sources() -> list[Path]:
    """The parts of the package a node runs: the reference server and what it imports."""
    sut = sorted(p for p in (PACKAGE_DIR / "sut").glob("*.py"))
    return [PACKAGE_DIR / "__init__.py", PACKAGE_DIR / "errors.py", *sut]


# redis-py needs this below Python 3.11.3, which is Debian bookworm's 3.11.2 but not the host's.
CONTAINER_ONLY_REQUIREMENTS = ("async-timeout>=4.0.3",)


def _pins() -> list[str]:
    host = [f"{name}=={metadata.version(name)}" for name in NODE_REQUIREMENTS]
    return host + list(CONTAINER_ONLY_REQUIREMENTS)


def wheelhouse(requirements: list[str], constraints: tuple[str, ...] = (),
               what: str = "the node image") -> Path:
    """Wheels of `requirements` and their dependencies (at the `constraints`' versions), made
    once per set: containers here reach no package index."""
    key = " ".join([*requirements, "|", *constraints])
    target = WHEEL_CACHE / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (target / ".complete").exists():
        return target
    _say(f"fetching wheels for {what}: {', '.join(requirements)}")
    target.mkdir(parents=True, exist_ok=True)
    pinned = target / "constraints.txt"
    pinned.write_text("".join(f"{c}\n" for c in constraints))
    # The host runs the containers' Python minor version on the same Debian release, so the
    # wheels pip picks for the host fit them.
    _run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(target), "-c", str(pinned),
          *requirements], "pip wheel")
    (target / ".complete").touch()
    return target


def _context_files(role: str) -> dict[str, Path]:
    """Files the build context holds beside the Dockerfile, by their path in the context."""
    if role == "node":
        wheels = wheelhouse(_pins())
        files = {f"wheels/{w.name}": w for w in sorted(wheels.glob("*.whl"))}
        files.update({f"harness/{p.relative_to(PACKAGE_DIR)}": p for p in _node_sources()})
        return files
    if role == "toxiproxy":
        binary = shutil.which("toxiproxy-server")
        if binary is None:
            raise HarnessError("toxiproxy-server is not installed; run scripts/setup.sh")
        return {"toxiproxy-server": Path(binary)}
    return {}


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def ensure_image(c: docker.DockerClient, role: str, base_id: str) -> str:
    """The tag of the role's image, built only when nothing with that content exists."""
    return build_image(c, IMAGES_DIR / role / "Dockerfile", _context_files(role), base_id,
                       f"harness/{role}", role)


def build_image(c: docker.DockerClient, dockerfile: Path, files: dict[str, Path], base_id: str,
                name: str, role: str) -> str:
    """`name:<digest of everything that goes in>`, built from `dockerfile` with `files` in its
    context (by their path there), unless an image of that content exists."""
    tag = f"{name}:" + _digest([base_id.encode(), dockerfile.read_bytes(),
                                *(n.encode() + p.read_bytes() for n, p in files.items())])
    if _has_image(c, tag):
        return tag
    _say(f"building image {tag}")
    with tempfile.TemporaryDirectory(prefix=f"harness-{role}-") as ctx:
        shutil.copy(dockerfile, Path(ctx) / "Dockerfile")
        for inside, src in files.items():
            dest = Path(ctx) / inside
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
        try:
            c.images.build(path=ctx, tag=tag, rm=True, forcerm=True, labels={"io.harness.image": role})
        except docker.errors.BuildError as e:
            lines = [str(step.get("stream", step.get("error", ""))).strip() for step in e.build_log]
            raise HarnessError(f"building {tag} failed: {' | '.join(x for x in lines if x)[-400:]}") from None
    return tag


def ensure_images(c: docker.DockerClient) -> dict[str, str]:
    """Tags of all four roles' images, building what is missing. Runs started side by side
    (two terminals, a parallel test suite) take turns here: the second finds what the first
    built instead of debootstrapping and fetching the wheels a second time into the same place."""
    BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with BUILD_LOCK.open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        base = ensure_base(c)
        return {role: ensure_image(c, role, base) for role in ROLES}
