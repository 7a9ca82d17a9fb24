"""The TUI's widgets: they show data they are given and post past-tense messages."""
