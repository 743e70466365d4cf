"""`igbench predict --model api` against a real `transformers serve` on 127.0.0.1 serving a tiny random LLaVA
(the same folder `--model vlm` loads), directly and through a small fault-injecting HTTP proxy."""
from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from igllm_support import cli, read_jsonl, tiny_dataset
from vlm_support import Server, free_port, split_with_broken_image, tiny_vlm

pytestmark = [pytest.mark.blender, pytest.mark.train]  # real renders, a real model server

SHORT = ["predict.max_new_tokens=16"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_vlm(tmp_path_factory, "llava")


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    running = Server(model, log=tmp_path_factory.getbasetemp() / "serve.log").start()
    yield running
    running.stop()


def api_args(server, model, data, out, *extra, endpoint=None):
    return ["predict", "--model", "api", "--endpoint", endpoint or server.endpoint, "--checkpoint", str(model),
            "--data", str(data), "--split", "val", "--out", str(out), "--quiet", *extra]


def test_api_answers_equal_local_answers_and_the_cache_costs_nothing(server, model, data, tmp_path):
    local, remote, again = tmp_path / "local.jsonl", tmp_path / "api.jsonl", tmp_path / "again.jsonl"
    cache = f"predict.cache_dir={tmp_path / 'cache'}"
    assert cli("predict", "--model", "vlm", "--checkpoint", str(model), "--data", str(data), "--split", "val",
               "--out", str(local), "--batch-size", "1", "--quiet", *SHORT) == 0
    with FaultProxy(server.endpoint) as proxy:  # no faults: it counts the requests
        assert cli(*api_args(server, model, data, remote, "--batch-size", "1", cache, *SHORT,
                             endpoint=proxy.endpoint)) == 0
        asked = len(proxy.served)
        assert cli(*api_args(server, model, data, again, "--batch-size", "1", cache, *SHORT,
                             endpoint=proxy.endpoint)) == 0
        assert asked == 4 and len(proxy.served) == asked  # the repeated run is answered by the cache alone
    a, b = read_jsonl(local), read_jsonl(remote)
    assert [r["id"] for r in b] == [r["id"] for r in a] and len(b) == 4
    assert [r["program"] for r in b] == [r["program"] for r in a]
    assert [r["tokens_in"] for r in b] == [r["tokens_in"] for r in a]
    assert all(r["cached"] is False and r["tokens_out"] == 16 and r["seconds"] > 0 for r in b)
    assert a[0]["prompt_sha256"] == b[0]["prompt_sha256"]
    assert [r["program"] for r in read_jsonl(again)] == [r["program"] for r in b]
    assert all(r["cached"] for r in read_jsonl(again))


def test_server_killed_mid_run_then_restarted_loses_nothing(server, model, data, tmp_path):
    """One line per answered sample survives the kill; the rerun asks only for the rest."""
    out = tmp_path / "p.jsonl"
    args = ["predict", "--model", "api", "--endpoint", server.endpoint, "--checkpoint", str(model), "--data", str(data),
            "--split", "train", "--out", str(out), "--batch-size", "1", "--quiet", "predict.max_new_tokens=200",
            "predict.cache=false", "predict.max_retries=1", "predict.backoff=0.1", "predict.concurrency=1"]
    try:
        proc = subprocess.Popen([sys.executable, "-m", "igbench", *args], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_text().count("\n") >= 1:
                server.stop()
                break
            time.sleep(0.02)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and "does not answer" in err.strip().splitlines()[-1], err
        kept = read_jsonl(out)
        assert 1 <= len(kept) < 8
    finally:
        server.stop()
        server.start()
    assert cli(*args) == 0
    ids = [r["id"] for r in read_jsonl(out)]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert read_jsonl(out)[:len(kept)] == kept


class FaultProxy:
    """A real HTTP proxy in front of the server. It answers the first requests with the faults queued in
    `faults` (429, 500, 'timeout': sleeps past the client's timeout, 'malformed': a 200 whose body is not
    JSON) and forwards the others; with `key` set, a request without that bearer key gets a 401."""

    def __init__(self, upstream: str, faults=(), key: str | None = None, delay: float = 1.5):
        self.upstream, self.faults, self.key, self.delay = upstream.rstrip("/"), list(faults), key, delay
        self.served: list = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.key and self.headers.get("Authorization") != f"Bearer {proxy.key}":
                    return self.reply(401, json.dumps({"error": {"message": "invalid api key"}}).encode())
                with proxy.lock:
                    fault = proxy.faults.pop(0) if proxy.faults else None
                    proxy.served.append(fault)
                if fault == "timeout":
                    time.sleep(proxy.delay)
                    return self.reply(200, b"{}")
                if fault == "malformed":
                    return self.reply(200, b'{"choices": [{"message": ')
                if isinstance(fault, int):
                    return self.reply(fault, json.dumps({"error": {"message": f"injected {fault}"}}).encode())
                request = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=body,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        return self.reply(response.status, response.read())
                except urllib.error.HTTPError as err:
                    return self.reply(err.code, err.read())

            def reply(self, status: int, payload: bytes):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_retries_survive_429_500_timeouts_and_malformed_bodies(server, model, data, tmp_path):
    direct, through = tmp_path / "direct.jsonl", tmp_path / "proxy.jsonl"
    common = ["--limit", "2", "predict.cache=false", *SHORT]
    assert cli(*api_args(server, model, data, direct, *common)) == 0
    faults = [429, 500, "timeout", "malformed", 503, 429]
    with FaultProxy(server.endpoint, faults) as proxy:
        assert cli(*api_args(server, model, data, through, *common, "predict.timeout=1", "predict.backoff=0.05",
                             "predict.max_retries=6", endpoint=proxy.endpoint)) == 0
        assert proxy.served[:6] == [429, 500, "timeout", "malformed", 503, 429] and not proxy.faults
    assert [r["program"] for r in read_jsonl(through)] == [r["program"] for r in read_jsonl(direct)]


def test_wrong_key_is_one_line_and_the_key_is_never_written(server, model, data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "p.jsonl"
    with FaultProxy(server.endpoint, key="right-key") as proxy:
        monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
        assert cli(*api_args(server, model, data, out, "predict.cache=false", *SHORT, endpoint=proxy.endpoint)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "401" in err and "API key" in err
        monkeypatch.setenv("MY_VLM_KEY", "right-key")
        assert cli(*api_args(server, model, data, out, "--api-key-env", "MY_VLM_KEY", "--limit", "1",
                             "predict.cache=false", *SHORT, endpoint=proxy.endpoint)) == 0
    written = "".join(p.read_text() for p in tmp_path.iterdir() if p.is_file())
    assert len(read_jsonl(out)) == 1 and "right-key" not in written and "wrong-key" not in written


def test_unknown_model_name_and_silent_endpoint(server, model, data, tmp_path, capsys):
    assert cli(*api_args(server, "no-such-model", data, tmp_path / "a.jsonl", "predict.cache=false", *SHORT)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no-such-model" in err and "400" in err
    silent = f"http://127.0.0.1:{free_port()}/v1"
    assert cli(*api_args(server, model, data, tmp_path / "b.jsonl", "predict.cache=false", "predict.max_retries=1",
                         "predict.backoff=0.01", *SHORT, endpoint=silent)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not answer" in err and silent in err
    assert cli("predict", "--model", "api", "--checkpoint", str(model), "--data", str(data), "--split", "val",
               "--out", str(tmp_path / "c.jsonl")) == 2
    assert "needs --endpoint" in capsys.readouterr().err


def test_unreadable_image_is_refused_before_sending_and_earlier_lines_stay(server, model, data, tmp_path, capsys):
    broken, bad_id = split_with_broken_image(data, tmp_path, 1)
    out = tmp_path / "p.jsonl"
    assert cli(*api_args(server, model, broken, out, "--batch-size", "1", "predict.cache=false", *SHORT)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and bad_id in err
    assert len(read_jsonl(out)) == 1
