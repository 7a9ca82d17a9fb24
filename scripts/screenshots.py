"""Make the README's screenshots: SVGs of each pane of the real app, on seeded data.

Seeds a temporary data dir (tiny real model files, scanned; PNGs imported into the gallery, as the
TUI tests do), configures the tests' fake sd-server as a managed backend holding the Pony
checkpoint, starts `tsr tui`'s app against its embedded `local` server, and saves one SVG per
pane and size into screenshots/. Images are drawn with half cells, as most terminals over ssh
show them.

    uv run python scripts/screenshots.py            # all of them
    uv run python scripts/screenshots.py gallery    # those whose name contains "gallery"
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "screenshots"
PATIENCE = 30.0


async def _wait(pilot: Pilot[None], condition: Callable[[], bool]) -> None:
    waited = 0.0
    while not condition() and waited < PATIENCE:
        await pilot.pause(0.05)
        waited += 0.05


async def fill_the_form(pilot: Pilot[None]) -> None:
    """A prompt, and the character LoRA with its first trigger word, as a user would set them."""
    from textual.widgets import OptionList, SelectionList, TextArea

    screen = pilot.app.screen
    screen.query_one("#form-prompt", TextArea).text = "score_9, a lighthouse on a cliff at dusk"
    picker_list = screen.query_one("#lora-list", OptionList)
    await _wait(pilot, lambda: picker_list.option_count > 0)
    picker_list.focus()
    await pilot.press("space", "minus", "minus")
    await pilot.pause(0.8)
    screen.query_one("#lora-triggers", SelectionList).focus()
    await pilot.press("space")
    screen.query_one("#form-prompt", TextArea).focus()


async def shoot(
    name: str, pane: str, size: tuple[int, int], keys: tuple[str, ...], fill: bool
) -> Path:
    """Run the app on `pane` at `size`, press `keys`, wait for data, save screenshots/NAME.svg."""
    from tsr.config import load_config
    from tsr.tui.app import build_app

    app = build_app(load_config(), renderer="halfcell", start_pane=pane)
    async with app.run_test(size=size) as pilot:
        await _wait(pilot, lambda: app.connection.online and bool(app.connection.info))
        await _wait(pilot, lambda: bool(app.connection.info and app.connection.info.loaded_models))
        await pilot.pause(1.5)  # lists, thumbnails and the preview arrive
        if fill:
            await fill_the_form(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
        await pilot.pause(1.0)
        await pilot.wait_for_scheduled_animations()
        svg = app.export_screenshot(title=f"tsr tui: {name.replace('-', ' ')}")
    path = OUT / f"{name}.svg"
    path.write_text(svg, encoding="utf-8")
    return path


#: name, pane, size, keys to press, whether to fill the generate form first
SHOTS: list[tuple[str, str, tuple[int, int], tuple[str, ...], bool]] = [
    ("gallery-80x24", "gallery", (80, 24), ("down", "down"), False),
    ("gallery-160x48", "gallery", (160, 48), ("right",), False),
    ("generate-80x24", "generate", (80, 24), (), True),
    ("generate-loras-160x48", "generate", (160, 48), (), True),
    ("loras-80x24", "loras", (80, 24), (), True),
    ("models-80x24", "models", (80, 24), (), False),
    ("models-160x48", "models", (160, 48), (), False),
]


def managed_fake_backend(home: Path) -> str:
    """A `[[backends]]` entry: tests' fake sd-server, started by tsr, holding the Pony model."""
    from tests.fakes.sd_server_fixtures import fake_sd_server_command, free_port

    launcher = home / "bin" / "sd-server"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(
        "#!/bin/sh\nexec " + " ".join(f'"{part}"' for part in fake_sd_server_command()) + ' "$@"\n'
    )
    launcher.chmod(0o755)
    model = home / "models" / "checkpoints" / "ponyDiffusionV6XL.safetensors"
    return (
        f'[[backends]]\nname = "gpu"\nkind = "managed"\nurl = "http://127.0.0.1:{free_port()}"\n'
        f'binary = "{launcher}"\nmodel = "{model}"\n'
    )


def main() -> None:
    """Seed a temporary data dir and take every screenshot (or those matching argv[1])."""
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    home = Path(tempfile.mkdtemp(prefix="tsr-screenshots-"))
    os.environ["TSR_HOME"] = str(home)
    os.environ["TSR_CONFIG"] = str(home / "config.toml")
    from tests.tui.seed import seed_home
    from tsr.client.local import shutdown_embedded
    from tsr.config import load_config

    seed_home(load_config(), images=40)
    (home / "config.toml").write_text(managed_fake_backend(home))
    OUT.mkdir(exist_ok=True)
    for name, pane, size, keys, fill in SHOTS:
        if wanted in name:
            path = asyncio.run(shoot(name, pane, size, keys, fill))
            print(path.relative_to(ROOT))
            shutdown_embedded()


if __name__ == "__main__":
    main()
