"""Backends, the job queue and generation, against the fake sd-server process."""
