"""What `status` tells about the parts the daemon runs with: the gateway and the engines."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.opencode.gateway import Gateway


def gateway(gw: "Gateway | None") -> dict[str, Any] | None:
    if gw is None:
        return None
    return {"host": gw.host, "port": gw.port, "upstream": gw.upstream.url}


DISTRIBUTIONS = {"ghostty": "pyghostty", "avt": "pyavt", "pyte": "pyte"}
_engines: dict[str, str] = {}


def known_engines() -> dict[str, str] | None:
    """What `engines` found, once it has run in this image."""
    return dict(_engines) if _engines else None


def engines() -> dict[str, str]:
    """Named from the installed packages, without loading a native engine on the event loop;
    read once per image (importlib.metadata takes a good part of 20 ms)."""
    if not _engines:
        _engines.update(_installed_engines())
    return dict(_engines)


def _installed_engines() -> dict[str, str]:
    from importlib import metadata

    from supervisor.screen import expected_engine

    def version(package: str) -> str:
        try:
            return f"{package} {metadata.version(package)}"
        except metadata.PackageNotFoundError:
            return f"{package} (not installed)"

    name = expected_engine()
    package = DISTRIBUTIONS.get(name)
    screen = f"{name} ({version(package)})" if package else f"{name} (unknown; pyte serves)"
    return {"screen": screen, "trio": version("trio")}
