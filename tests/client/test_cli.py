"""`tsr status` and `tsr serve`: against local, a real `tsr serve` process, and nothing."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import run_cli, write_config
from tests.server.conftest import TOKEN
from tests.server.running import ServeProcess
from tsr.client import connect
from tsr.config import load_config
from tsr.errors import AuthRejected

Cli = tuple[pytest.CaptureFixture[str], pytest.MonkeyPatch]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return capsys, monkeypatch


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One `tsr serve` process with a token, for the tests of this module."""
    root = tmp_path_factory.mktemp("served")
    process = ServeProcess(root / "home", root / "config.toml", TSR_TOKEN=TOKEN)
    yield process
    process.stop()


def test_status_of_the_local_server(cli: Cli, isolated_home: Path) -> None:
    code, out, err = run_cli(*cli, "status")
    assert (code, err) == (0, "")
    assert "remote:    local, embedded in this process" in out
    assert f"address:   unix socket {isolated_home / 'tsr.sock'}" in out
    assert "auth:      none" in out
    # the state depends on whether something answers on sd-server's default port
    assert re.search(r"default  external  \w+ +http://127\.0\.0\.1:1234", out), out


def test_status_of_a_remote_tsr_serve_with_a_token(
    cli: Cli, served: ServeProcess, tmp_path: Path
) -> None:
    write_config(
        tmp_path / "config" / "config.toml",
        f'[remotes.x]\nurl = "{served.url}"\ntoken = "{TOKEN}"\n',
    )
    code, out, _ = run_cli(*cli, "status", "--remote", "x")
    assert code == 0
    assert f"address:   {served.url}" in out
    assert f"(serve, pid {served.process.pid})" in out
    assert "auth:      token required" in out
    code, out, _ = run_cli(*cli, "status", "--remote", "x", "--json")
    status = json.loads(out)
    assert (status["reachable"], status["mode"], status["pid"]) == (
        True,
        "serve",
        served.process.pid,
    )


def test_status_of_an_unreachable_remote_is_one_line(cli: Cli, tmp_path: Path) -> None:
    write_config(
        tmp_path / "config" / "config.toml", '[remotes.gone]\nurl = "http://127.0.0.1:9"\n'
    )
    code, out, err = run_cli(*cli, "status", "-r", "gone")
    assert code == 1 and out == ""
    assert err == (
        "tsr: cannot reach gone at http://127.0.0.1:9: connection refused; "
        "is `tsr serve` running there?\n"
    )
    code, out, err = run_cli(*cli, "status", "-r", "gone", "--json")
    assert code == 1 and json.loads(out)["reachable"] is False
    code, _, err = run_cli(*cli, "status", "-r", "nowhere")
    assert (code, err) == (
        1,
        "tsr: there is no remote named 'nowhere'; known remotes: local, gone\n",
    )


def test_local_uses_the_running_tsr_serve_of_its_data_dir(
    served: ServeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSR_HOME", str(served.home))
    monkeypatch.setenv("TSR_TOKEN", TOKEN)
    with connect("local") as client:
        info = client.info()
    assert (info.mode, info.pid) == ("serve", served.process.pid)
    assert client.endpoint.base_url == served.url
    monkeypatch.setenv("TSR_TOKEN", "wrong")
    with connect("local", load_config()) as client, pytest.raises(AuthRejected) as caught:
        client.info()
    assert str(caught.value).startswith(
        f"token rejected by local: local is served by tsr serve (pid {served.process.pid})"
    )


def test_a_second_server_for_the_same_data_dir_is_refused(
    cli: Cli, served: ServeProcess, monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    monkeypatch.setenv("TSR_HOME", str(served.home))
    code, _, err = run_cli(*cli, "serve", "--port", "0")
    assert code == 1
    assert err == (
        f"tsr: tsr serve (pid {served.process.pid}) at {served.url} already serves the data dir "
        f"{served.home}; stop it first, or point TSR_HOME at another data dir\n"
    )
    # the same when this process embeds the data dir's server
    monkeypatch.setenv("TSR_HOME", str(isolated_home))
    connect("local").health()
    code, _, err = run_cli(*cli, "serve", "--port", "0")
    assert code == 1
    assert f"an embedded tsr server (pid {os.getpid()}) on {isolated_home / 'tsr.sock'}" in err


def test_serve_logs_never_show_the_token(served: ServeProcess) -> None:
    httpx.get(f"{served.url}/api/info", headers={"Authorization": f"Bearer {TOKEN}"})
    log = (served.home / "logs" / "server.log").read_text()
    port = served.url.rsplit(":", 1)[1]
    assert f"tsr serving on http://127.0.0.1:{port} (token required)" in log
    assert '"GET /api/info HTTP/1.1" 200' in log
    assert TOKEN not in log


def test_serve_refuses_a_public_address_without_a_token(cli: Cli) -> None:
    code, out, err = run_cli(*cli, "serve", "--host", "0.0.0.0")
    assert (code, out) == (2, "")
    assert err.startswith("tsr: refusing to listen on 0.0.0.0 without a token: set one with ")
    assert err.count("\n") == 1


def test_serve_on_a_public_address_starts_with_insecure_no_auth(tmp_path: Path) -> None:
    process = ServeProcess(
        tmp_path / "public", tmp_path / "public.toml", "--host", "0.0.0.0", "--insecure-no-auth"
    )
    # reached over loopback only; the lock file gives the loopback URL
    assert process.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{process.url}/api/info").json()["auth"] is False
    code, err = process.stop()
    assert code == 0
    assert "tsr serving on http://0.0.0.0:" in err
    assert "(NO TOKEN: anyone who reaches this port can use it)" in err
    assert "tsr server stopped" in err
