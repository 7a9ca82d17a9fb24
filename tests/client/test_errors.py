"""Client errors: tsr sentences (never httpx tracebacks) naming the remote and what to do."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.client.conftest import write_config
from tests.server.conftest import TOKEN, make_config
from tests.server.extra_routes import Size, extra_router
from tests.server.running import RunningApp
from tsr.cli.common import client_for
from tsr.client import AsyncClient, Client, connect
from tsr.config import load_config
from tsr.errors import (
    AuthRejected,
    BadRequest,
    Conflict,
    JobFailed,
    NotFound,
    RemoteUnreachable,
    RootViolation,
    ServerError,
    UnknownRemote,
)
from tsr.schemas.server import Info
from tsr.server.app import create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    home = tmp_path_factory.mktemp("client-errors") / "home"
    app = create_app(make_config(home, token=TOKEN))
    app.include_router(extra_router())
    with RunningApp(app) as running:
        yield running


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remotes_config(tmp_path: Path, gpu_url: str, gpu_token: str | None) -> None:
    token_line = f'token = "{gpu_token}"\n' if gpu_token else ""
    write_config(
        tmp_path / "config" / "config.toml",
        f'default_remote = "gpu"\n\n[remotes.gpu]\nurl = "{gpu_url}"\n{token_line}\n'
        '[remotes.laptop]\nurl = "http://127.0.0.1:9"\n',
    )


def test_an_unreachable_remote_is_one_sentence_naming_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    remotes_config(tmp_path, url, TOKEN)
    with connect("gpu") as client, pytest.raises(RemoteUnreachable) as caught:
        client.info()
    assert str(caught.value) == (
        f"cannot reach gpu at {url}: connection refused; is `tsr serve` running there?"
    )
    with Client(url) as bare, pytest.raises(RemoteUnreachable, match=f"^cannot reach {url}: "):
        bare.health()


def test_a_wrong_or_missing_token_says_how_to_set_it(tmp_path: Path, server: RunningApp) -> None:
    remotes_config(tmp_path, server.url, "not-the-token")
    with connect("gpu") as client, pytest.raises(AuthRejected) as caught:
        client.info()
    assert str(caught.value) == (
        f"token rejected by gpu: set it with `tsr remote add gpu {server.url} --token ...`"
    )
    remotes_config(tmp_path, server.url, None)
    with connect("gpu") as client, pytest.raises(AuthRejected, match="no token is set for it"):
        client.info()
    remotes_config(tmp_path, server.url, TOKEN)
    with connect() as client:  # the default remote
        assert client.info().auth is True


def test_an_unknown_remote_lists_the_known_ones(tmp_path: Path) -> None:
    remotes_config(tmp_path, "http://127.0.0.1:9", None)
    with pytest.raises(UnknownRemote) as caught:
        connect("gpu-box")
    assert str(caught.value) == (
        "there is no remote named 'gpu-box'; known remotes: local, gpu, laptop"
    )


def test_the_remote_is_chosen_by_flag_then_env_then_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remotes_config(tmp_path, "http://127.0.0.1:8", None)
    config = load_config()
    assert client_for(None, config=config).remote == "gpu"
    monkeypatch.setenv("TSR_REMOTE", "laptop")
    assert client_for(None, config=config).remote == "laptop"
    assert client_for("gpu", config=config).remote == "gpu"
    assert client_for("gpu", local=True, config=config).remote == "local"


def test_server_errors_come_back_as_the_same_kind(server: RunningApp) -> None:
    with Client(server.url, token=TOKEN) as client:
        for name, kind in [
            ("missing", NotFound),
            ("busy", Conflict),
            ("outside", RootViolation),
            ("job", JobFailed),
            ("sd-down", RemoteUnreachable),
            ("upstream-auth", AuthRejected),
        ]:
            with pytest.raises(kind) as caught:
                client.get(f"/api/test/raise/{name}", dict)
            assert "token rejected" not in str(caught.value)
        with pytest.raises(ServerError, match=r"failed on GET /api/test/crash \(KeyError\)"):
            client.get("/api/test/crash", dict)
        with pytest.raises(NotFound, match="has no /api/nope; is it running an older tsr"):
            client.get("/api/nope", dict)


def test_validation_errors_name_the_fields(server: RunningApp) -> None:
    with Client(server.url, token=TOKEN) as client:
        assert client.post("/api/test/size", Size, json=Size(width=64, height=64)).width == 64
        with pytest.raises(BadRequest) as caught:
            client.post("/api/test/size", Size, json={"width": 5000})
    assert str(caught.value) == (
        f"{server.url} rejected the request: width: Input should be less than or equal to "
        "4096; height: Field required"
    )


def test_an_answer_of_the_wrong_shape_is_a_clear_error(server: RunningApp) -> None:
    with Client(server.url, token=TOKEN) as client, pytest.raises(ServerError) as caught:
        client.get("/api/health", Info)
    assert "cannot read" in str(caught.value) and "same tsr version" in str(caught.value)


def make_png(server: RunningApp, name: str) -> bytes:
    path = server.state.config.home / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path, format="PNG")
    return path.read_bytes()


def test_downloads_land_whole_or_not_at_all(server: RunningApp, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "image.png"
    with Client(server.url, token=TOKEN) as client:
        with pytest.raises(NotFound, match=r"there is no file sync\.png"):
            client.download("/api/test/files/sync.png", dest)
        assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
        original = make_png(server, "sync.png")
        assert client.download("/api/test/files/sync.png", dest) == dest
    assert dest.read_bytes() == original
    assert list(dest.parent.iterdir()) == [dest]


async def test_the_async_client_downloads_and_maps_errors(
    server: RunningApp, tmp_path: Path
) -> None:
    original = make_png(server, "async.png")
    async with AsyncClient(server.url, token=TOKEN) as client:
        dest = await client.download("/api/test/files/async.png", tmp_path / "a.png")
        with pytest.raises(Conflict, match="switching models"):
            await client.get("/api/test/raise/busy", dict)
        assert (await client.info()).auth is True
    assert dest.read_bytes() == original
    async with AsyncClient(server.url, token="wrong") as client:
        with pytest.raises(AuthRejected, match=f"^token rejected by {server.url}"):
            await client.info()
