"""The command line."""

from fivelayer.interfaces.cli.app import app, main

__all__ = ["app", "main"]
