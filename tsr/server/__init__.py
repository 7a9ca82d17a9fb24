"""The tsr server: `create_app(config)` in `tsr.server.app`, served by `tsr serve` or embedded."""
