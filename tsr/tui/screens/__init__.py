"""The TUI's screens: they fetch through the session in workers and feed the widgets."""
