"""What `status` tells about the parts the daemon runs with: the gateway and the engines."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.opencode.gateway import Gateway


def gateway(gw: "Gateway | None") -> dict[str, Any] | None:
    if gw is None:
        return None
    return {"host": gw.host, "port": gw.port, "upstream": gw.upstream.url}


def engines() -> dict[str, str]:
    from importlib import metadata

    from supervisor.screen import EngineUnavailable, engine_class, expected_engine

    name = expected_engine()
    try:
        engine = engine_class(name)
        found = {"screen": f"{name} ({getattr(engine, 'version', 'version unknown')})"}
    except EngineUnavailable as exc:
        found = {"screen": f"pyte, as {exc}"}
    try:
        found["trio"] = f"trio {metadata.version('trio')}"
    except metadata.PackageNotFoundError:
        found["trio"] = "trio (version unknown)"
    return found
