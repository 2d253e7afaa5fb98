"""RemoteMonitor posts each epoch's logs to a local HTTP server as Keras 3 does."""
import http.server
import json
import socket
import threading
import urllib.parse
import warnings

import numpy as np
import pytest

import axone
from axone import layers
from axone.callbacks import RemoteMonitor


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)


class _Server:
    def __init__(self, status=200):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _fit(callback, epochs=2):
    axone.utils.set_random_seed(0)
    m = axone.Sequential([layers.Input((3,)), layers.Dense(1)])
    m.compile("sgd", "mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    return m.fit(x, x[:, :1], epochs=epochs, batch_size=5, validation_split=0.2, verbose=0,
                 callbacks=[callback])


def test_form_post():
    with _Server() as srv:
        h = _fit(RemoteMonitor(root=srv.root, headers={"X-Run": "abc"}))
    assert len(srv.received) == 2
    for epoch, (path, headers, body) in enumerate(srv.received):
        assert path == "/publish/epoch/end/"
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert headers["X-Run"] == "abc"
        form = urllib.parse.parse_qs(body.decode())
        sent = json.loads(form["data"][0])
        assert sent["epoch"] == epoch
        for k in ("loss", "mae", "val_loss", "val_mae"):
            assert sent[k] == pytest.approx(h.history[k][epoch], rel=1e-7)


def test_json_post_and_field_path():
    with _Server() as srv:
        h = _fit(RemoteMonitor(root=srv.root, path="/x", field="ignored", send_as_json=True),
                 epochs=1)
    (path, headers, body), = srv.received
    assert path == "/x"
    assert headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    assert sent["epoch"] == 0 and sent["loss"] == pytest.approx(h.history["loss"][0], rel=1e-7)


def test_custom_field_and_numpy_values():
    with _Server() as srv:
        cb = RemoteMonitor(root=srv.root, field="payload")
        cb.on_epoch_end(3, {"loss": np.float32(0.5), "v": np.array(2.0)})
    form = urllib.parse.parse_qs(srv.received[0][2].decode())
    assert json.loads(form["payload"][0]) == {"epoch": 3, "loss": 0.5, "v": 2.0}


def test_refused_connection_warns_and_training_goes_on():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                   # nothing listens there now
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor root server"):
        h = _fit(RemoteMonitor(root=f"http://127.0.0.1:{port}"))
    assert len(h.history["loss"]) == 2


def test_server_error_status_is_not_a_warning():
    with _Server(status=500) as srv:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _fit(RemoteMonitor(root=srv.root), epochs=1)
    assert len(srv.received) == 1


def test_bad_headers():
    with pytest.raises(TypeError, match="RemoteMonitor: headers"):
        RemoteMonitor(headers=["a"])
