"""News-coverage monitor: poll feeds, extract, embed, store and flag coverage of analysts' topics."""

__version__ = "0.1.0"
