"""The OS layer of the daemon: everything that talks to the kernel about terminals and
processes. `fd` (an owned descriptor), `pty` (a new terminal and a child on it), `procs`
(a terminal session's processes: find, signal, end), `childwatch` (wait for an exit; the
platform's way in `_exit_*`), `reaper` (orphans), `peers` (who is calling), `tty` (a
client's own terminal, passed over the socket). /proc itself is read only by
`supervisor.procfs`.

Imports nothing else of the daemon.
"""
