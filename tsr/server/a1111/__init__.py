"""The A1111-compatible front (`/sdapi/v1/...`): A1111's request dialect translated to tsr's."""
