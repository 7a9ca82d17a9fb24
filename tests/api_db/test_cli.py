"""`python -m tsr db ...`: the same JSON from the embedded `local` and through `--remote`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.api_db.conftest import TOKEN, Library, database_write_lock
from tests.server.running import ServeProcess, cli_env
from tsr.client import Client

#: the read-only verbs compared between the two modes
READS = (
    ("list", "--json"),
    ("show", "zkx_girl_v2", "--json"),
    ("triggers", "zkx_girl_v2", "--json"),
    ("stats", "--json"),
    ("duplicates", "--json"),
)


def tsr(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tsr", "db", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )


def test_local_and_remote_print_the_same_json(library: Library, tmp_path: Path) -> None:
    home, config = tmp_path / "home", library.config_file(tmp_path / "config.toml")
    env = cli_env(home, config, CIVITAI_BASE_URL=library.fake.url)
    scanned = tsr(env, "scan", "--json")
    assert scanned.returncode == 0, scanned.stderr
    assert json.loads(scanned.stdout)["new"] == 3
    linked = tsr(env, "link", "--json")
    assert linked.returncode == 0, linked.stderr
    assert len(json.loads(linked.stdout)["linked"]) == 2
    local = {args[0]: tsr(env, *args) for args in READS}
    assert all(done.returncode == 0 for done in local.values())

    served = ServeProcess(home, config, TSR_TOKEN=TOKEN, CIVITAI_BASE_URL=library.fake.url)
    try:
        library.config_file(config, f'[remotes.gpu]\nurl = "{served.url}"\ntoken = "{TOKEN}"\n')
        for args in READS:
            remote = tsr(env, *args, "--remote", "gpu")
            assert remote.returncode == 0, remote.stderr
            assert json.loads(remote.stdout) == json.loads(local[args[0]].stdout), args
        assert json.loads(local["stats"].stdout)["linked"] == 2
        assert json.loads(local["show"].stdout)["civitai"]["model_name"] == "Zkx Girl (character)"
        refused = tsr(env, "scan", "/etc", "--remote", "gpu")
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.startswith("tsr: /etc is not inside a configured model root")
        assert refused.stderr.count("\n") == 1
    finally:
        served.stop()


def test_ctrl_c_during_a_scan_cancels_it_on_the_server(library: Library, tmp_path: Path) -> None:
    server_config = library.config_file(tmp_path / "server" / "config.toml")
    served = ServeProcess(tmp_path / "server" / "home", server_config, TSR_TOKEN=TOKEN)
    try:
        client_config = tmp_path / "client" / "config.toml"
        client_config.parent.mkdir()
        client_config.write_text(f'[remotes.gpu]\nurl = "{served.url}"\ntoken = "{TOKEN}"\n')
        env = cli_env(tmp_path / "client" / "home", client_config)
        with Client(served.url, token=TOKEN) as client:
            assert client.db.stats().files == 0
            # another writer holds the database, so the scan is still running when Ctrl-C comes
            with database_write_lock(tmp_path / "server" / "home" / "tsr.db"):
                scan = subprocess.Popen(
                    [sys.executable, "-m", "tsr", "db", "scan", "--remote", "gpu"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                deadline = time.monotonic() + 30
                while not client.db.tasks() and time.monotonic() < deadline:
                    time.sleep(0.05)
                [task] = client.db.tasks()
                time.sleep(0.3)  # let the command read the answer and start following
                scan.send_signal(signal.SIGINT)
                out, err = scan.communicate(timeout=30)
                assert out == ""
                assert client.db.task(task.id).cancel_requested
            assert scan.returncode == 130
            assert err == (
                f"tsr: scan cancelled (task #{task.id} on gpu); files already hashed are saved: "
                "run `tsr db scan` to resume\n"
            )
            assert client.db.wait(task).state == "cancelled"
    finally:
        served.stop()
