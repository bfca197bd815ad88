"""Tests of the store wing (server/store/), one module per module."""
