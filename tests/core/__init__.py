"""Tests of the core wing (server/core/), one module per module."""
