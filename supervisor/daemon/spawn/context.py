"""The OpenCode project context of a spawn: which project, and which rule decided it."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from supervisor.opencode.project import Project

EXPLICIT = "explicit"
PARENT_SESSION = "parent-session"
CALLER_ENV = "caller-env"
CWD = "cwd"
CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Context:
    directory: str
    project_id: str
    source: str
    parent: str | None = None
    worktree: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "project_id": self.project_id,
            "source": self.source,
            "parent": self.parent,
            "worktree": self.worktree,
        }

    def env(self) -> dict[str, str]:
        return {"OPENCODE_DIRECTORY": self.directory, "OPENCODE_PROJECT_ID": self.project_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Context":
        return cls(
            data["directory"],
            data["project_id"],
            data["source"],
            data.get("parent"),
            data.get("worktree"),
        )


class ProjectCache:
    """OpenCode's project of a directory, computed off the event loop and kept briefly:
    a project id only changes when a repository gains its first commit or a remote."""

    def __init__(
        self, resolve: "Callable[[str], Project] | None" = None, ttl: float = CACHE_SECONDS
    ) -> None:
        self._resolve = resolve or _project_for
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Project]] = {}

    async def get(self, directory: str) -> "Project":
        now = time.monotonic()
        hit = self._entries.get(directory)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        project = await trio.to_thread.run_sync(self._resolve, directory)
        if len(self._entries) > 4096:
            self._entries.clear()
        self._entries[directory] = (time.monotonic(), project)
        return project


async def decide(
    cache: ProjectCache,
    *,
    explicit: str | None,
    parent: tuple[str, Context] | None,
    caller_directory: str | None,
    cwd: str,
) -> Context:
    """The first rule that applies: an explicit project directory; the context of the
    session the caller runs inside (whatever the cwd); the caller's own
    OPENCODE_DIRECTORY; the requested cwd."""
    if explicit is not None:
        return await _from_directory(cache, explicit, EXPLICIT)
    if parent is not None:
        parent_id, context = parent
        return Context(
            context.directory, context.project_id, PARENT_SESSION, parent_id, context.worktree
        )
    if caller_directory and os.path.isabs(caller_directory):
        return await _from_directory(cache, caller_directory, CALLER_ENV)
    return await _from_directory(cache, cwd, CWD)


def _project_for(directory: str) -> "Project":
    from supervisor.opencode.project import project_for

    return project_for(directory)


async def _from_directory(cache: ProjectCache, directory: str, source: str) -> Context:
    from supervisor.opencode.project import resolve_directory

    resolved = resolve_directory(directory)
    project = await cache.get(resolved)
    return Context(resolved, project.id, source, None, project.worktree)
