"""Bulletin: a live-update push server for live stories."""

__version__ = "0.1.0"
