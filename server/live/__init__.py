"""Live delivery: the hub's I/O.

The hub driver (runs the hub's needs against the database and the broker, and publishes
committed events), the brokers that carry events between processes, and the uvicorn
protocols that bound what one connection can cost. It knows no HTTP routes.
"""
