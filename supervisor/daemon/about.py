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

    found = {}
    for name, package in (("screen", "pyte"), ("trio", "trio")):
        try:
            found[name] = f"{package} {metadata.version(package)}"
        except metadata.PackageNotFoundError:
            found[name] = f"{package} (version unknown)"
    return found
