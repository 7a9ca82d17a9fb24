"""Downloads: transfers with faults, the persisted queue, the CivitAI proxy, the CLI."""
