"""How a spawn request becomes a child's start: `context` (which OpenCode project the child
belongs to, by the four rules) and `childenv` (its working directory and environment).

Imports only `supervisor.opencode` and the shared `supervisor.environment`.
"""
