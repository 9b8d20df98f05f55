"""keras_zoo.downloads.file_lock: one holder at a time across processes and threads, and no lock file left behind."""

import hashlib
import multiprocessing
import threading
import time

import pytest

from keras_zoo import downloads
from keras_zoo.cards import FileSpec
from tests.http_server import serve


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KERAS_ZOO_MIRROR", raising=False)
    monkeypatch.delenv("KERAS_ZOO_OFFLINE", raising=False)
    return tmp_path / "home"


def _leftover_locks(folder):
    return sorted(str(path) for path in folder.rglob("*.lock"))


def test_the_lock_file_is_removed_once_released(tmp_path):
    target = tmp_path / "cache" / "model.weights.h5"
    with downloads.file_lock(target):
        assert (tmp_path / "cache" / ".model.weights.h5.lock").exists()
        with downloads.file_lock(tmp_path / "cache" / "other"):  # another name: no wait
            pass
    assert _leftover_locks(tmp_path) == []


def test_a_download_leaves_no_lock_file(tmp_path, zoo_home):
    root = tmp_path / "www"
    root.mkdir()
    (root / "file.bin").write_bytes(b"payload" * 1000)
    md5 = hashlib.md5(b"payload" * 1000).hexdigest()
    with serve(root) as server:
        path = downloads.fetch(FileSpec("file.bin", server.url + "/file.bin", md5=(md5,)), progress=False)
    assert path.read_bytes() == b"payload" * 1000
    assert _leftover_locks(zoo_home) == []


def _count(target, counter, rounds, slow):
    """``rounds`` read-sleep-write increments of the number in ``counter``, each under the lock: a lost update
    shows two holders at once."""
    for _ in range(rounds):
        with downloads.file_lock(target):
            value = int(counter.read_text() or 0)
            if slow:
                time.sleep(0.001)
            counter.write_text(str(value + 1))


@pytest.mark.parametrize("kind", ["processes", "threads"])
def test_holders_never_overlap_while_lock_files_come_and_go(tmp_path, kind):
    """Each release removes the file other holders were waiting on; they must lock the new one, never both."""
    target, counter = tmp_path / "shared" / "item", tmp_path / "counter"
    counter.write_text("0")
    workers, rounds = 4, 40
    if kind == "processes":
        context = multiprocessing.get_context("fork")
        runners = [context.Process(target=_count, args=(target, counter, rounds, index % 2 == 0))
                   for index in range(workers)]
    else:
        runners = [threading.Thread(target=_count, args=(target, counter, rounds, index % 2 == 0))
                   for index in range(workers)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=120)
    if kind == "processes":
        assert [runner.exitcode for runner in runners] == [0] * workers
    assert int(counter.read_text()) == workers * rounds
    assert _leftover_locks(tmp_path) == []
