"""listbot: an assistant for a working group's mailing list."""

__version__ = "0.1.0"
