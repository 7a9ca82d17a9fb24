"""Paths from clients: outside the model roots (by `..`, absolute, or a symlink) is refused."""

from __future__ import annotations

import os

import pytest

from tests.api_db.conftest import Library, Mode
from tests.modelfiles import write_sd15_lora
from tsr.errors import BadRequest, NotFound, RootViolation

#: ways to point at /etc/passwd, or at a folder outside the roots, from inside them
TRAVERSALS = ("../../etc/passwd", "/etc/passwd", "/etc", "~/.ssh/id_rsa", "./x.safetensors")


@pytest.fixture
def outside(library: Library) -> dict[str, str]:
    """A model file outside the roots, and symlinks inside the roots that lead to it."""
    folder = library.root.parent / "elsewhere"
    secret = write_sd15_lora(folder / "secret.safetensors")
    link_dir = library.loras / "escape"
    link_dir.symlink_to(folder, target_is_directory=True)
    link_file = library.loras / "escape.safetensors"
    link_file.symlink_to(secret)
    return {
        "folder": str(folder),
        "file": str(secret),
        "link_dir": str(link_dir),
        "link_file": str(link_file),
        "dotdot": f"{library.loras}/../../elsewhere",
    }


def test_a_scan_outside_the_roots_is_refused_and_reads_nothing(
    api: Mode, library: Library, outside: dict[str, str]
) -> None:
    db = api.client.db
    for root in (*outside.values(), *TRAVERSALS):
        with pytest.raises(RootViolation, match=r"not an absolute path|not inside a configured"):
            db.scan([root])
    with pytest.raises(RootViolation, match="/etc is not inside a configured model root"):
        db.scan([str(library.loras), "/etc"])
    assert db.tasks() == []  # nothing was started, so nothing was read
    # the scan that is allowed skips the symlinks leading out of the roots
    scanned = db.wait(db.scan([str(library.loras)]))
    assert scanned.state == "done"
    paths = [f.path for f in db.files().items]
    assert paths == [str(library.copy), str(library.lora)]
    assert db.stats().files == 2


def test_every_file_reference_stays_inside_the_roots(
    api: Mode, library: Library, outside: dict[str, str]
) -> None:
    db = api.client.db
    assert db.wait(db.scan()).state == "done"
    for ref in (outside["file"], outside["link_file"], outside["dotdot"], *TRAVERSALS):
        with pytest.raises(RootViolation):
            db.resolve(ref)
    with pytest.raises(BadRequest, match="NUL"):
        db.resolve(f"{library.lora}\x00.txt")
    # names and hashes are looked up in the database only: a name outside is simply unknown
    with pytest.raises(NotFound, match="no model file is named 'secret'"):
        db.resolve("secret")
    with pytest.raises(NotFound, match="no model file is named 'passwd'"):
        db.resolve("passwd")
    # ids are database ids: a path where an id belongs is not taken
    for path in ("/api/db/files/..%2F..%2Fetc%2Fpasswd", "/api/db/files/%2Fetc%2Fpasswd"):
        with pytest.raises((BadRequest, NotFound)):
            api.client.call("GET", path)
    with pytest.raises(BadRequest, match="file"):
        api.client.call("GET", "/api/db/triggers", params={"file": "../../etc/passwd"})
    with pytest.raises(BadRequest, match="file"):
        api.client.call("POST", "/api/db/triggers", json={"file": "/etc/passwd", "words": ["x"]})
    assert db.resolve(str(library.lora)).path == str(library.lora)
    relative = os.path.relpath(library.lora, library.loras)
    with pytest.raises(RootViolation, match="not an absolute path"):
        db.resolve(f"./{relative}")
