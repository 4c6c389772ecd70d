"""Output files: a folder, a missing folder or a file of the user's is refused; fivelayer's own are replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from fivelayer.core.errors import FivelayerError
from fivelayer.core.files import check_output_file, head_contains


def _ours(path: Path) -> bool:
    return head_contains(path, "made by fivelayer")


def test_refuses_a_folder_and_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FivelayerError, match=r"is a directory; give a file name such as out\.md"):
        check_output_file(tmp_path, _ours, example="out.md", what="note")
    with pytest.raises(FivelayerError, match=r"folder .*missing does not exist"):
        check_output_file(tmp_path / "missing" / "out.md", _ours, example="out.md", what="note")


def test_a_new_an_empty_or_an_own_file_may_be_written_and_a_users_file_is_refused(tmp_path: Path) -> None:
    new, empty, own, users = (tmp_path / name for name in ("new.md", "empty.md", "own.md", "users.md"))
    empty.write_text("")  # as mktemp leaves it: nothing to lose
    own.write_text("# Title\nmade by fivelayer\n")
    users.write_text("my notes\n")
    for path in (new, empty, own):
        check_output_file(path, _ours, example="out.md", what="note")
    with pytest.raises(FivelayerError, match=r"users\.md exists and is not a fivelayer note.*remove it or write"):
        check_output_file(users, _ours, example="out.md", what="note")
    assert users.read_text() == "my notes\n"


def test_head_contains_reads_only_the_head(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 5000 + "made by fivelayer")
    assert not head_contains(path, "made by fivelayer")  # past the first 4,096 bytes
    assert head_contains(path, "made by fivelayer", size=6000)
    assert not head_contains(tmp_path / "absent.txt", "made by fivelayer")
