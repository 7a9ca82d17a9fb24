"""Fixtures of the sd-server client tests: the fake sd-server, run as a real process."""

from __future__ import annotations

from tests.fakes.sd_server_fixtures import (
    fake_sd_server,
    fake_sd_server_factory,
    fake_sd_server_process,
)

__all__ = ["fake_sd_server", "fake_sd_server_factory", "fake_sd_server_process"]
