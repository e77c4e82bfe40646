"""core/safepath.py: a directory reached as root one component at a time, never through a link, refusing what
another user could redirect."""

from __future__ import annotations

import os

import pytest

from core.safepath import UnsafePath, components, open_directory

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")


def opened(path, *, strict: bool) -> os.stat_result:
    descriptor = open_directory(str(path), strict=strict)
    try:
        return os.fstat(descriptor)
    finally:
        os.close(descriptor)


def test_a_directory_of_roots_own_tree_opens_and_is_that_directory(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert opened(tmp_path / "a" / "b", strict=True).st_ino == (tmp_path / "a" / "b").stat().st_ino


@pytest.mark.parametrize("strict", [True, False])
def test_a_link_anywhere_on_the_way_is_refused_and_named(tmp_path, strict):
    (tmp_path / "real" / "logs").mkdir(parents=True)
    (tmp_path / "via").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePath, match=f"{tmp_path}/via is a symbolic link"):
        open_directory(str(tmp_path / "via" / "logs"), strict=strict)


@pytest.mark.parametrize("path", ["relative/dir", "/a/../etc", "/a/./b", "/a//b"])
def test_a_path_that_is_not_absolute_and_normalised_is_refused(path):
    with pytest.raises(UnsafePath, match="not"):
        components(path)


@needs_root
def test_strict_refuses_a_directory_another_user_owns_naming_it_and_its_owner(tmp_path):
    agents = tmp_path / "agent"
    (agents / "logs").mkdir(parents=True)
    os.chown(agents, NOBODY, NOBODY)
    with pytest.raises(UnsafePath, match=f"{agents} is owned by nobody \\(mode 0755\\)"):
        open_directory(str(agents / "logs"), strict=True)


@needs_root
def test_strict_refuses_a_root_directory_others_may_write_unless_sticky(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafePath, match="mode 0777"):
        open_directory(str(shared), strict=True)
    shared.chmod(0o1777)  # as /tmp: others may add names, not rename root's
    assert opened(shared, strict=True).st_uid == 0


@needs_root
def test_lenient_walks_into_the_agents_own_tree_but_not_from_it_into_another_owners(tmp_path):
    agents = tmp_path / "agent"
    (agents / "logs").mkdir(parents=True)
    for path in (agents, agents / "logs"):
        os.chown(path, NOBODY, NOBODY)
    assert opened(agents / "logs", strict=False).st_uid == NOBODY  # root -> agent -> agent: safe
    os.chown(agents / "logs", 0, 0)  # a root directory inside the agent's: the agent could have swapped it in
    with pytest.raises(UnsafePath, match=f"unsafe path transition: {agents} is owned by nobody"):
        open_directory(str(agents / "logs"), strict=False)


def test_a_file_on_the_way_is_not_a_directory(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        open_directory(str(tmp_path / "file" / "x"), strict=True)
