"""Config: defaults, comments surviving edits, bad files and values named, secrets kept private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tsr.config import ConfigFile, load_config
from tsr.errors import ConfigError, UnknownRemote

COMMENTED = """\
# my tsr setup
default_remote = "local"  # keep local by default

[remotes.gpu]  # the big box
url = "http://gpu-box:8765"
token_env = "GPU_TOKEN"

[server]
# listen only here
host = "127.0.0.1"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def config_path() -> Path:
    return Path(os.environ["TSR_CONFIG"])


def test_missing_file_means_defaults(isolated_home: Path) -> None:
    config = load_config()
    assert config.default_remote == "local"
    assert config.model_roots()["checkpoints"] == [isolated_home / "models" / "checkpoints"]
    assert config.db_path() == isolated_home / "tsr.db"
    backend = config.effective_backends()[0]
    assert (backend.kind, backend.url) == ("external", "http://127.0.0.1:1234")


def test_adding_and_removing_remotes_keeps_comments() -> None:
    path = write(config_path(), COMMENTED)
    edit = ConfigFile()
    edit.add_remote("laptop", "http://10.0.0.5:8765/", token="s3cret", token_env=None)
    edit.save()
    text = path.read_text()
    assert "# my tsr setup" in text
    assert "# the big box" in text
    assert "# listen only here" in text
    assert 'url = "http://10.0.0.5:8765"' in text

    edit = ConfigFile()
    edit.remove_remote("laptop")
    edit.save()
    text = path.read_text()
    assert "laptop" not in text
    assert "# the big box" in text and "# keep local by default" in text
    assert load_config().remote_names() == ["local", "gpu"]


def test_file_with_a_secret_is_private() -> None:
    edit = ConfigFile()
    edit.add_remote("gpu", "https://gpu.example:8765", token="s3cret", token_env=None)
    edit.save()
    assert stat.S_IMODE(config_path().stat().st_mode) == 0o600


def test_bad_toml_names_the_file() -> None:
    write(config_path(), "[server\nport = 1\n")
    with pytest.raises(ConfigError, match=r"config\.toml is not valid TOML"):
        load_config()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[server]\nport = 'eighty'\n", "'server.port'"),
        ("[server]\nport = 70000\n", "'server.port'"),
        ("[remotes.gpu]\nurl = 'gpu-box:8765'\n", "'remotes.gpu.url'"),
        ("[tui]\nimage_renderer = 'pixels'\n", "'tui.image_renderer'"),
        ("[server]\nprot = 8765\n", "unknown key 'server.prot'"),
        ("[[backends]]\nname = 'a'\nkind = 'docker'\n", "'backends.0.kind'"),
    ],
)
def test_bad_values_name_the_key(text: str, named: str) -> None:
    write(config_path(), text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert named in str(caught.value)
    assert "config.toml" in str(caught.value)


def test_unknown_remote_lists_the_known_ones() -> None:
    write(config_path(), COMMENTED)
    with pytest.raises(UnknownRemote, match="known remotes: local, gpu"):
        load_config().remote("gpu-box.example.com")


def test_local_cannot_be_removed_or_replaced() -> None:
    edit = ConfigFile()
    with pytest.raises(ConfigError, match="built in"):
        edit.remove_remote("local")
    with pytest.raises(ConfigError, match="local"):
        edit.add_remote("local", "http://x:1", None, None)


def test_remote_url_is_validated() -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        ConfigFile().add_remote("gpu", "gpu-box:8765", None, None)
    with pytest.raises(ConfigError, match="query"):
        ConfigFile().add_remote("gpu", "http://gpu-box:8765/?token=abc", None, None)


def test_token_env_wins_over_stored_token(monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_path(), '[remotes.gpu]\nurl = "http://g:1"\ntoken = "a"\ntoken_env = "GPU_T"\n')
    remote = load_config().remote("gpu")
    assert remote is not None
    assert remote.resolved_token() == "a"
    monkeypatch.setenv("GPU_T", "b")
    assert remote.resolved_token() == "b"


def test_set_rejects_a_bad_value_and_leaves_the_file_alone() -> None:
    path = write(config_path(), COMMENTED)
    with pytest.raises(ConfigError, match=r"server\.port"):
        ConfigFile().set("server.port", "not-a-port")
    assert path.read_text() == COMMENTED


def test_model_roots_accept_a_string_or_a_list(tmp_path: Path) -> None:
    write(
        config_path(), f'[paths]\ncheckpoints = "{tmp_path}/ck"\nloras = ["{tmp_path}/a", "~/b"]\n'
    )
    roots = load_config().model_roots()
    assert roots["checkpoints"] == [tmp_path / "ck"]
    assert roots["loras"][0] == tmp_path / "a"
    assert roots["loras"][1] == Path("~/b").expanduser()
