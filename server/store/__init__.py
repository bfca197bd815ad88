"""The store: the database and what is kept in it.

Models, the engine, the event log (every change to a stream writes the next seq),
accounts, API tokens and desk sessions, migrations. It knows no transport and no HTTP
request: callers pass in what they read from the request.
"""
