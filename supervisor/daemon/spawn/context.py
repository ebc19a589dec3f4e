"""The OpenCode project context of a spawn: which project, and which rule decided it."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from supervisor.opencode.project import Project, ProjectMemo

EXPLICIT = "explicit"
PARENT_SESSION = "parent-session"
CALLER_ENV = "caller-env"
CWD = "cwd"


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
    """OpenCode's project of a directory, computed off the event loop and remembered while
    its repository stays as it was (a first commit or a new remote changes the id)."""

    def __init__(self, resolve: "Callable[[str], Project] | None" = None) -> None:
        self._resolve = resolve
        self._memo: ProjectMemo | None = None

    async def get(self, directory: str) -> "Project":
        if self._memo is None:
            from supervisor.opencode.project import ProjectMemo

            self._memo = ProjectMemo(self._resolve, size=4096)
        return await trio.to_thread.run_sync(self._memo.get, directory)


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
        project = await cache.get(context.directory)
        return Context(context.directory, project.id, PARENT_SESSION, parent_id, project.worktree)
    if caller_directory and os.path.isabs(caller_directory):
        return await _from_directory(cache, caller_directory, CALLER_ENV)
    return await _from_directory(cache, cwd, CWD)


async def _from_directory(cache: ProjectCache, directory: str, source: str) -> Context:
    from supervisor.opencode.project import resolve_directory

    resolved = resolve_directory(directory)
    project = await cache.get(resolved)
    return Context(resolved, project.id, source, None, project.worktree)
