"""The host's choice of the test files that `-k` selects, and its cache (harness.selection)."""

import json
import os
from pathlib import Path

from harness import selection
from harness.paths import TESTS_DIR

ONE_TEST = "test_ipproto_mptcp_gives_an_mptcp_connection"


def test_the_file_holding_the_selected_test_is_found_and_kept(tmp_path):
    [found] = selection.files_selected([TESTS_DIR / "mptcp"], ONE_TEST, tmp_path)
    assert ONE_TEST in found.read_text() and found.parent == TESTS_DIR / "mptcp"
    [entry] = (tmp_path / selection.CACHE_SUBDIR).iterdir()
    assert json.loads(entry.read_text()) == [str(found)]


def test_a_kept_answer_is_used_without_collecting_again(tmp_path):
    paths = [TESTS_DIR / "mptcp"]
    entry = tmp_path / selection.CACHE_SUBDIR / f"{selection.fingerprint(paths, ONE_TEST)}.json"
    entry.parent.mkdir()
    entry.write_text(json.dumps(["/kept/answer.py"]))
    assert selection.files_selected(paths, ONE_TEST, tmp_path) == [Path("/kept/answer.py")]


def test_a_selection_of_nothing_gives_the_paths_back_and_is_not_kept(tmp_path):
    paths = [TESTS_DIR / "mptcp"]
    assert selection.files_selected(paths, "no_test_is_named_like_this", tmp_path) == paths
    assert not (tmp_path / selection.CACHE_SUBDIR).exists()


def test_the_fingerprint_changes_with_a_test_file_the_keyword_and_the_paths(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "harness").mkdir()
    test_file = tmp_path / "tests" / "test_x.py"
    test_file.write_text("def test_x():\n    pass\n")
    (tmp_path / "harness" / "notes.txt").write_text("not read by a collection")
    paths = [tmp_path / "tests"]
    before = selection.fingerprint(paths, "x", tmp_path)
    assert selection.fingerprint(paths, "x", tmp_path) == before
    os.utime(tmp_path / "harness" / "notes.txt", ns=(1, 1))
    assert selection.fingerprint(paths, "x", tmp_path) == before
    assert selection.fingerprint(paths, "y", tmp_path) != before
    assert selection.fingerprint([tmp_path], "x", tmp_path) != before
    stat = test_file.stat()
    os.utime(test_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert selection.fingerprint(paths, "x", tmp_path) != before
