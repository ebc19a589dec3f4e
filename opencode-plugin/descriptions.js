// What the model reads about each tool.
export const SPAWN = `Start a command in a new pseudo-terminal (PTY) that runs in the background, owned by the pty-supervisor daemon.

Use it for long-running or interactive programs: dev servers, watchers, REPLs, shells, a nested opencode. The terminal keeps running after this conversation and after OpenCode exits; a person can watch or take it over with \`ptysup attach ID\`.

The terminal starts in the session's project directory (or workdir, relative to it) and carries the project's OpenCode context (OPENCODE_DIRECTORY, OPENCODE_PROJECT_ID, an opencode that stays in the project), whatever the shell later cd's to.

Running it needs the user's bash permission for the command as a shell line: any env variables come first (\`NAME=value command args\`), so permission given for the bare command does not cover them. Set only the variables the command needs.

Returns the terminal ID for pty_write, pty_read, pty_wait, pty_screen and pty_kill. With notifyOnExit, a message arrives in this session when the command ends.`;

export const WRITE = `Type input into a terminal started by pty_spawn (or any terminal pty_list shows).

Escapes in data: \\n (newline), \\r (Enter), \\t (tab), \\\\ (backslash), \\xNN (the byte NN, e.g. \\x03 is Ctrl+C, \\x04 Ctrl+D, \\x1b Escape), \\uNNNN (a character). To run a command in a shell, end it with \\n.

After writing, use pty_wait with a pattern to wait for the answer, or pty_read / pty_screen to look.`;

export const READ = `Read a terminal's output as plain text lines (escape sequences removed, lines as the terminal shows them), numbered from 1.

offset (0-based) and limit (default 500) page through the lines; with pattern (a JavaScript regular expression, ignoreCase for case-insensitive), only the matching lines are kept and offset/limit apply to the matches. The daemon keeps the last 1 MiB of each terminal's output.`;

export const LIST = `List the terminals of this project (started by pty_spawn from any OpenCode session in this directory, also earlier runs): ID, title, command, status and exit code, and which OpenCode session started each.`;

export const KILL = `End a terminal: SIGHUP, then SIGTERM, then SIGKILL to every process in it. Its output stays readable with pty_read unless cleanup is true, which also removes the terminal and its output.`;

export const WAIT = `Wait for a terminal: for a regular expression to appear in its output (pattern), or, without pattern, for the command to end (returns the exit code and the last lines).

The pattern is searched in the output since the last pty_write to this terminal (so the answer to a command just typed counts), else since the last pty_wait match, else from the start. timeout is in seconds (default 60, at most 3600); on timeout the answer says so, and you can wait again.`;

export const SCREEN = `Show what a terminal displays right now: its rows as plain text, the cursor, the title, whether a full-screen program (alternate screen) is on. Best for full-screen programs (editors, TUIs, top), where pty_read's lines are a jumble of redraws.`;
