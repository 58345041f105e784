"""requirements.lock: the one lock the image (Dockerfile) and CI's virtualenv install from.

Every runtime dependency of pyproject.toml (with the image's extras) is pinned
there at a version its specifier allows, every pin carries hashes, and the
Dockerfile installs nothing that is not hash-checked.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
IMAGE_EXTRAS = ("s3", "http", "redis")
# The image's interpreter (Debian trixie's python3), the CI machine's, and Debian
# bookworm's (the package still supports 3.11; `make bench-python` builds the image on it).
PYTHONS = ({"python_version": "3.13", "python_full_version": "3.13.5"},
           {"python_version": "3.11", "python_full_version": "3.11.7"},
           {"python_version": "3.11", "python_full_version": "3.11.2"})


def locked() -> list[tuple[Requirement, list[str]]]:
    """(pinned requirement, its hashes) for every entry of requirements.lock."""
    text = (REPO / "requirements.lock").read_text()
    entries = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        lines = [line.strip().rstrip("\\").strip() for line in block.splitlines() if not line.lstrip().startswith("#")]
        if not lines or not lines[0]:
            continue
        entries.append((Requirement(lines[0]), [line for line in lines[1:] if line.startswith("--hash=")]))
    return entries


def applies(requirement: Requirement, python: dict) -> bool:
    env = {"sys_platform": "linux", "platform_system": "Linux", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "platform_machine": "x86_64", "os_name": "posix", **python}
    return requirement.marker is None or Marker(str(requirement.marker)).evaluate(env)


def image_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in IMAGE_EXTRAS:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(spec) for spec in wanted]


def test_every_image_dependency_is_pinned_at_a_version_pyproject_allows():
    entries = locked()
    for python in PYTHONS:
        pins = {canonicalize_name(req.name): req for req, _ in entries if applies(req, python)}
        for wanted in image_requirements():
            pin = pins.get(canonicalize_name(wanted.name))
            assert pin is not None, f"{wanted.name} is not in requirements.lock: run `make lock`"
            (spec,) = pin.specifier
            assert spec.operator == "==", pin
            assert wanted.specifier.contains(spec.version, prereleases=True), \
                f"requirements.lock pins {pin}, pyproject.toml wants {wanted}: run `make lock`"


def test_every_pin_carries_sha256_hashes_and_pip_and_the_build_backend_are_pinned_too():
    entries = locked()
    assert len(entries) > 100
    for requirement, hashes in entries:
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), requirement.name
    names = {canonicalize_name(req.name) for req, _ in entries}
    assert {"pip", "setuptools", "wheel"} <= names


def test_the_dockerfile_installs_only_hash_checked_wheels_and_the_project_without_dependencies():
    dockerfile = (REPO / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^&\n]*)", dockerfile.replace("\\\n", " "))
    assert len(installs) == 2, installs
    locked_install, project_install = (" ".join(i.split()) for i in installs)
    # the lock is complete: nothing resolved, so a newer release on PyPI cannot slip in
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:"} <= set(locked_install.split()), locked_install
    assert "-r /src/requirements.lock" in locked_install
    assert "--no-index --no-deps --no-build-isolation /src" in project_install
    assert "pip check" in dockerfile
