"""Tests of the live wing (server/live/), one module per module."""
