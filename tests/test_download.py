"""Downloads, tested against a real HTTP server on 127.0.0.1 (no network, no mocks).

The server serves IDX files that the test writes; the downloader is pointed at
it by replacing minigen's table of mirrors and checksums, not urllib.
"""

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from minigen.data import DataError, load, locate, sources, write_idx


class Handler(BaseHTTPRequestHandler):
    """Serves server.files[path] = (body, mode); mode "short" lies about the length."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        if self.path not in self.server.files:
            self.send_error(404)
            return
        body, mode = self.server.files[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        extra = 10_000 if mode == "short" else 0
        self.send_header("Content-Length", str(len(body) + extra))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True  # "short": the client is left waiting for 10,000 bytes

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MINIGEN_DATA", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": [], "mnist": []})
    monkeypatch.setattr(sources, "_announced", set())
    return tmp_path / "cache"


def publish(server, monkeypatch, tmp_path, n=5, folder="/mnist/", mode="ok"):
    """Put a fake MNIST train split on the server; returns the arrays served."""
    images = np.random.default_rng(n).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    sums = {}
    for name, array in (
        ("train-images-idx3-ubyte.gz", images),
        ("train-labels-idx1-ubyte.gz", labels),
    ):
        body = write_idx(tmp_path / name, array).read_bytes()
        server.files[folder + name] = (body, mode)
        sums[name] = hashlib.sha256(body).hexdigest()
    monkeypatch.setitem(sources.SHA256, "mnist", sums)
    monkeypatch.setitem(sources.MIRRORS, "mnist", [server.url + folder])
    return images, labels


def cache_contents(cache):
    return sorted(p.name for p in cache.rglob("*")) if cache.exists() else []


def test_download_then_cached(server, cache, monkeypatch, tmp_path):
    images, labels = publish(server, monkeypatch, tmp_path)
    assert locate("mnist").kind == "download"
    assert cache_contents(cache) == [
        "mnist",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    got_images, got_labels = load("mnist")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert locate("mnist").kind == "cache"
    assert len(server.requests) == 2, "each file fetched once, then read from the cache"


def test_checksum_mismatch_keeps_nothing(server, cache, monkeypatch, tmp_path):
    publish(server, monkeypatch, tmp_path)
    monkeypatch.setitem(
        sources.SHA256["mnist"], "train-images-idx3-ubyte.gz", hashlib.sha256(b"other").hexdigest()
    )
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: SHA-256 mismatch") as e:
        load("mnist")
    assert "was not kept" in str(e.value) and "MINIGEN_DATA" in str(e.value)
    assert cache_contents(cache) == ["mnist"], "no file, whole or partial, in the cache"


def test_interrupted_transfer_keeps_nothing(server, cache, monkeypatch, tmp_path):
    publish(server, monkeypatch, tmp_path, mode="short")
    with pytest.raises(DataError, match="transfer interrupted after .* bytes") as e:
        load("mnist")
    assert "nothing was kept" in str(e.value)
    assert cache_contents(cache) == ["mnist"], "no file and no .part left behind"


def test_one_bad_file_keeps_the_whole_split_out(server, cache, monkeypatch, tmp_path):
    publish(server, monkeypatch, tmp_path)
    body, _ = server.files["/mnist/train-labels-idx1-ubyte.gz"]
    server.files["/mnist/train-labels-idx1-ubyte.gz"] = (body, "short")
    with pytest.raises(DataError, match="train-labels.*interrupted"):
        load("mnist")
    assert cache_contents(cache) == ["mnist"], "the good images file is not kept alone either"


def test_next_mirror_after_a_404(server, cache, monkeypatch, tmp_path):
    publish(server, monkeypatch, tmp_path)
    monkeypatch.setitem(sources.MIRRORS, "mnist", [server.url + "/gone/", server.url + "/mnist/"])
    assert len(load("mnist")[0]) == 5
    assert server.requests[0] == "/gone/train-images-idx3-ubyte.gz"


def test_http_error_everywhere(server, cache, monkeypatch, tmp_path):
    publish(server, monkeypatch, tmp_path)
    monkeypatch.setitem(sources.MIRRORS, "mnist", [server.url + "/gone/"])
    with pytest.raises(DataError, match=r"/gone/train-images-idx3-ubyte.gz: .*HTTP 404"):
        load("mnist")
    assert cache_contents(cache) == ["mnist"]


def test_only_missing_files_are_fetched(server, cache, monkeypatch, tmp_path):
    images, labels = publish(server, monkeypatch, tmp_path)
    (cache / "mnist").mkdir(parents=True)
    write_idx(cache / "mnist" / "train-labels-idx1-ubyte.gz", labels)
    load("mnist")
    assert server.requests == ["/mnist/train-images-idx3-ubyte.gz"]


def test_unresponsive_server_fails_fast_and_counts_as_offline(cache, monkeypatch, capsys):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setitem(sources.MIRRORS, "fashion-mnist", [url])
        monkeypatch.setattr(sources, "TIMEOUT", 0.2)
        with pytest.raises(sources.DownloadError) as e:
            sources.fetch("fashion-mnist", "test", cache / "fashion-mnist")
        assert e.value.offline and "Check the network" in str(e.value)
        images, _ = load("fashion-mnist", "test")  # so load falls through to the subset
    assert images.shape == (1000, 28, 28)
    assert "cannot be reached" in capsys.readouterr().err
    assert cache_contents(cache) == ["fashion-mnist"]
