"""The `tsr tui` Textual app: every pane reaches its data through tsr.client."""
