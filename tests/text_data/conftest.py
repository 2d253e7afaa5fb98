"""Fixtures: an isolated axone cache, a local HTTP server on 127.0.0.1, fake dataset files."""
import functools
import http.server
import socket
import threading

import pytest


class _Handler(http.server.SimpleHTTPRequestHandler):
    timeout = 5                      # a stuck client cannot hold a server thread

    def log_message(self, *args):    # keep pytest output quiet
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


class LocalServer:
    """Serves ``root`` on http://127.0.0.1:<ephemeral port>/ from a daemon thread."""

    def __init__(self, root):
        self.root = root
        handler = functools.partial(_Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.running = True

    @property
    def requests(self):
        return self.httpd.requests

    def stop(self):
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = LocalServer(root)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def dead_url():
    """A 127.0.0.1 URL where nothing listens (connections are refused at once)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def axone_home(tmp_path, monkeypatch, dead_url):
    """Every test gets its own cache (AXONE_HOME); every dataset URL defaults to a dead local
    address (AXONE_DATASETS_URL), and resolving any host but 127.0.0.1 fails, so that no test
    can ever reach an outside host."""
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1"):
            raise OSError(f"test guard: refusing to resolve non-local host {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    home = tmp_path / "axone_home"
    monkeypatch.setenv("AXONE_HOME", str(home))
    monkeypatch.setenv("AXONE_DATASETS_URL", dead_url + "/nowhere")
    return home
