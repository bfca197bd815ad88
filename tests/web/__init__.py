"""Tests of the web wing (server/web/), one module per module."""
