"""The web: the app factory and everything a request meets.

Routes (one module per surface; no route imports another), callers and write limits,
idempotency, validation, templating, assets, OpenAPI and JSON-LD. It sits on top of the
other wings.
"""
