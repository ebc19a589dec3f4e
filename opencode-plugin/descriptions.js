// What the model reads about each tool.

// With PTYSUP_OPENCODE_SCOPE=all, in place of REACH.
export const REACH_ALL = `These tools reach every terminal of this user's pty-supervisor daemon (PTYSUP_OPENCODE_SCOPE=all), also those a person opened by hand.`;
export const REACH = `These tools reach only this project's terminals: those pty_spawn started in this directory (from any OpenCode session, also earlier runs). A terminal a person opened by hand, or another project's, is refused.`;

export const SPAWN = `Start a command in a new pseudo-terminal (PTY) that runs in the background, owned by the pty-supervisor daemon.

Use it for long-running or interactive programs: dev servers, watchers, REPLs, shells, a nested opencode. The terminal keeps running after this conversation and after OpenCode exits; a person can watch or take it over with \`ptysup attach ID\`.

The terminal starts in the session's project directory (or workdir, relative to it) and carries the project's OpenCode context (OPENCODE_DIRECTORY, OPENCODE_PROJECT_ID, an opencode that stays in the project), whatever the shell later cd's to.

Running it needs the user's bash permission for the command as a shell line: any env variables come first (\`NAME=value command args\`), so permission given for the bare command does not cover them. Set only the variables the command needs.

Returns the terminal ID for pty_write, pty_read, pty_wait, pty_screen and pty_kill. With notifyOnExit, a message arrives in this session when the command ends (if it cannot be set up, the answer says so; pty_wait without a pattern also tells).`;

export const WRITE = `Type input into a terminal of this project (started by pty_spawn; pty_list shows them).

Escapes in data: \\n (newline), \\r (Enter), \\t (tab), \\\\ (backslash), \\xNN (the byte NN, e.g. \\x03 is Ctrl+C, \\x04 Ctrl+D, \\x1b Escape), \\uNNNN (a character). To run a command in a shell, end it with \\n; type one command per call. At most 1 MiB per call. Each command line typed needs the user's bash permission, as in the bash tool.

The answer says the byte offset the output stood at when the input began: pty_wait searches from there by default. After writing, use pty_wait with a pattern to wait for the answer, or pty_read / pty_screen to look.

${REACH}`;

export const READ = `Read a terminal's output as plain text lines (escape sequences removed, lines as the terminal shows them), numbered from 1. The daemon keeps the last 1 MiB of each terminal's output.

offset (0-based, default 0) and limit (from 1, default 500) page through the lines; with pattern (a JavaScript regular expression matched against each line; ignoreCase for case-insensitive), only the matching lines are kept and offset/limit apply to the matches. Lines longer than 2,000 characters are cut, around the match when there is one. A pattern that runs more than 5 s (catastrophic backtracking, as in (a+)+) is stopped and the answer says so.

While a full-screen program (an editor, top, a TUI) holds the terminal, what it shows now comes first, then its output as lines.

Escape strings that are never terminated (a stray ESC P or ESC ]) hide at most the rest of their own line; random bytes in the output show as such and hide nothing after them.

${REACH}`;

export const LIST = `List this project's terminals (started by pty_spawn from any OpenCode session in this directory, also earlier runs): ID, title, command, status and exit code, and which OpenCode session started each. Only these can be read, written, waited for or killed.`;

export const LIST_ALL = `List every terminal of this user's pty-supervisor daemon (PTYSUP_OPENCODE_SCOPE=all): ID, title, command, status and exit code, its project, and which OpenCode session started each (none for a terminal opened by hand).`;

export const KILL = `End a terminal: SIGHUP, then SIGTERM, then SIGKILL to every process in it. Its output stays readable with pty_read unless cleanup is true, which also removes the terminal and its output.

Needs the user's bash permission, asked as the command that does the same: \`ptysup kill ID\`, or \`ptysup rm ID\` with cleanup. ${REACH}`;

export const WAIT = `Wait for a terminal: for a regular expression to appear in its output (pattern), or, without pattern, for the command to end (returns the exit code and the last lines).

The pattern is matched against each line (as pty_read's is; no match spans lines), in the output that came after the last input typed into this terminal, by pty_write from any OpenCode session (also an earlier run); when that input ended with Enter, its first line, the echo of the command typed, is not searched. Without any input known, the search starts at the beginning of the output kept. since (a byte offset) searches from there instead.

On a match the answer gives the matched text, its line, and the byte offset where the match ends: pty_wait with since set to it searches only what came after. timeout is in seconds (default 60, at most 3600); on timeout the answer says so and which bytes were searched, and you can wait again. A wait goes on across a restart of the daemon (\`ptysup upgrade\`). ${REACH}`;

export const SCREEN = `Show what a terminal displays right now: its rows as plain text, the cursor, the title, whether a full-screen program (alternate screen) is on. Best for full-screen programs (editors, TUIs, top), where pty_read's lines are a jumble of redraws. ${REACH}`;
