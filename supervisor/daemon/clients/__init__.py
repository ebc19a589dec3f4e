"""The daemon's clients: `server` accepts them, a `connection` carries one's bytes (frames
in, the `outbox` out), a `client` is what the daemon knows of one (subscriptions, routes,
terminals, input), `dispatch` runs each request through the `optable` to the handlers in
`ops_sessions` and `ops_streams`, and a `route` carries one subscription's output to the
socket or to a terminal the daemon holds (`terminal`). `hub` is what every request may reach.

May import the registry, sessions, spawn rules and the OS layer; nothing imports it but
the lifecycle.
"""
