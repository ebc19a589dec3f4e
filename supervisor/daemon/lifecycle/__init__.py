"""The daemon's life: `main` (start, serve, stop), the `listener` (the socket on disk and its
lock), `upgrade` (re-exec in place), `crash` (the fd store and re-adoption after a crash)
and `state` (the file that carries the sessions across).

Imports anything of the daemon; nothing of the daemon imports it.
"""
