"""One supervised terminal and its parts: `session` coordinates the `reader` (PTY → ring →
subscribers), the `writer` (input), `flow` (who may hold the child back), `roles`
(controller and observers), the `screenview` of the `screen` model and the `title`.
A `subscription` is one client's bounded queue of its output; `ring` the scrollback;
`snapshot` the session as data for a new daemon image.

May import the OS layer and the spawn rules; never the clients or the lifecycle.
"""
