"""The app frame against real servers: connecting, remotes, offline and retry, keymap, help."""

from __future__ import annotations

import socket
from pathlib import Path

from textual.widgets import Select, Static

from tests.server.running import ServeProcess
from tests.tui.conftest import make_app, wait_for, write_config
from tsr.tui.screens.help import HelpScreen
from tsr.tui.widgets.header import RemoteBar


def header_text(app: object) -> str:
    bar = app.screen.query_one(RemoteBar)  # type: ignore[attr-defined]
    return str(bar.query_one(".remote-bar--state", Static).content)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_first_frame_says_connecting_then_the_local_server_answers(home: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.connection.remote == "local"
        await wait_for(pilot, lambda: app.connection.online, "the local server")
        await pilot.pause()
        assert "online" in header_text(app)
        assert app.connection.info is not None
        assert app.connection.info.data_dir == str(home)


async def test_an_unreachable_remote_is_offline_with_a_reason_and_retry(home: Path) -> None:
    port = closed_port()
    config = write_config(f'[remotes.gpu-box]\nurl = "http://127.0.0.1:{port}"\n')
    app = make_app(config)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.connection.online, "the local server")
        app.screen.query_one(RemoteBar).query_one(Select).value = "gpu-box"
        await wait_for(pilot, lambda: app.connection.status == "offline", "gpu-box offline")
        await pilot.pause()
        text = header_text(app)
        assert "offline" in text and "cannot reach gpu-box" in text and "retry" in text
        assert "ctrl+r" in app.screen.active_bindings
        assert app.screen.active_bindings["ctrl+r"].binding.action == "retry"
        await pilot.press("ctrl+r")  # still down: offline again, no crash
        await wait_for(pilot, lambda: app.connection.status == "offline", "the retry to fail")
        assert app.connection.remote == "gpu-box"
        app.use_remote("local")
        await wait_for(pilot, lambda: app.connection.online, "local again")
        assert app.connection.remote == "local"


async def test_switching_to_another_server_rebinds_the_header(home: Path, tmp_path: Path) -> None:
    other_home = tmp_path / "gpu-home"
    other_config = tmp_path / "gpu-config.toml"
    other_config.write_text("")
    server = ServeProcess(other_home, other_config)
    try:
        config = write_config(f'[remotes.gpu-box]\nurl = "{server.url}"\n')
        app = make_app(config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.connection.online, "the local server")
            app.use_remote("gpu-box")
            await wait_for(
                pilot,
                lambda: app.connection.online and app.connection.remote == "gpu-box",
                "gpu-box online",
            )
            await pilot.pause()
            assert app.connection.info is not None
            assert app.connection.info.data_dir == str(other_home)
            assert app.screen.query_one(RemoteBar).query_one(Select).value == "gpu-box"
            assert "online" in header_text(app)
    finally:
        server.stop()


async def test_the_users_keymap_moves_a_key_and_unknown_ids_are_named(home: Path) -> None:
    config = write_config('[tui.keymap]\n"app.pane_gallery" = "g"\n"gallery.explode" = "x"\n')
    app = make_app(config)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.pause()
        assert app.current_mode == "create"
        await pilot.press("4")  # the old key no longer switches
        await pilot.pause()
        assert app.current_mode == "create"
        await pilot.press("g")
        await wait_for(pilot, lambda: app.current_mode == "gallery", "the gallery pane")
        warnings = [n.message for n in app._notifications]
        assert any("gallery.explode" in message for message in warnings)


async def test_help_lists_the_keys_of_the_pane_with_their_ids(home: Path) -> None:
    app = make_app(start_pane="gallery")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        text = str(app.screen.query_one("#help-text", Static).content)
        assert "gallery.trash" in text and "Move the image" in text
        assert "app.pane_models" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")


async def test_the_palette_offers_namespaced_commands_that_apply(home: Path) -> None:
    port = closed_port()
    config = write_config(f'[remotes.gpu-box]\nurl = "http://127.0.0.1:{port}"\n')
    app = make_app(config)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.connection.online, "the local server")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "remote: use gpu-box" in titles and "remote: use local" not in titles
        assert "gallery: show trash" in titles and "models: rescan" in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"use gpu")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.connection.status == "offline", "gpu-box offline")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "remote: retry gpu-box" in titles
        assert not any(title.startswith("gallery:") for title in titles)  # nothing to show
