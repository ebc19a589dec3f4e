"""The project id OpenCode 1.18.33 derives from a repository's ``origin`` URL.

OpenCode runs ``new URL(remote)`` (WHATWG URL) and, when that throws, an scp-like pattern;
the parser below follows the WHATWG rules as far as a git remote can exercise them
(docs/opencode.md, Project id).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import urllib.parse


def remote_project_id(url: str) -> str | None:
    """The project id OpenCode derives from an ``origin`` URL, None when it derives none."""
    key = remote_key(url)
    if key is None:
        return None
    return hashlib.sha1(f"git-remote:{key}".encode()).hexdigest()


def remote_key(url: str) -> str | None:
    """``host/path`` of a remote URL as OpenCode normalises it, e.g. ``github.com/o/r``."""
    text = url.strip()
    if not text:
        return None
    try:
        parsed = _parse_url(text)
    except _NotAUrl:
        scp = _SCP_LIKE.fullmatch(text)
        return _host_path(scp[2], scp[3]) if scp else None
    return None if parsed is None else _host_path(*parsed)


class _NotAUrl(ValueError):
    pass


_SCP_LIKE = re.compile(r"([^@/:]+@)?([^/:]+):(.+)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_SPECIAL = frozenset({"http", "https", "ws", "wss", "ftp"})
_FORBIDDEN_HOST = frozenset("\x00\t\n\r #/:<>?@[\\]^|")
_FORBIDDEN_DOMAIN = _FORBIDDEN_HOST | frozenset(chr(c) for c in range(0x20)) | {"%", "\x7f"}
_PATH_ESCAPE = frozenset(' "#<>?^`{}\x7f')


def _host_path(host: str, path: str) -> str | None:
    path = re.sub(r"/+\Z", "", re.sub(r"\.git/?\Z", "", path.lstrip("/")))
    if not host or not path:
        return None
    return f"{host.lower()}/{path}"


def _parse_url(text: str) -> tuple[str, str] | None:
    """(hostname, pathname) per WHATWG, None for a file: URL; raises where ``new URL`` throws."""
    text = text.strip("".join(chr(c) for c in range(0x21)))
    text = re.sub(r"[\t\n\r]", "", text)
    scheme_match = _SCHEME.match(text)
    if scheme_match is None:
        raise _NotAUrl(text)
    scheme = scheme_match[0][:-1].lower()
    rest = text[scheme_match.end() :]
    if scheme == "file":
        return None
    special = scheme in _SPECIAL
    if special:
        rest = rest.replace("\\", "/").lstrip("/")
    elif rest.startswith("//"):
        rest = rest[2:]
    else:
        return "", ""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, rest = rest[:end], rest[end:]
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]
    _, at, hostport = authority.rpartition("@")
    if at and not hostport:
        raise _NotAUrl(text)
    host = _parse_host(hostport, special)
    if host is None:
        raise _NotAUrl(text)
    if special and not rest:
        rest = "/"
    return host, _serialize_path(rest)


def _parse_host(hostport: str, special: bool) -> str | None:
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            return None
        host, port = hostport[: close + 1], hostport[close + 1 :]
        if port and not port.startswith(":"):
            return None
        port = port[1:]
    else:
        host, colon, port = hostport.partition(":")
        if colon and not host:
            return None
    if port and (not port.isascii() or not port.isdigit() or int(port) > 65535):
        return None
    if host.startswith("["):
        if "%" in host:
            return None
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    if not special:
        if any(c in _FORBIDDEN_HOST for c in host):
            return None
        return "".join(c if 0x1F < ord(c) < 0x7F else urllib.parse.quote(c) for c in host)
    if not host:
        return None
    domain = urllib.parse.unquote(host)
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    domain = domain.lower()
    if not domain or any(c in _FORBIDDEN_DOMAIN for c in domain):
        return None
    if not all(_valid_label(label) for label in domain.split(".")):
        return None
    return _ipv4(domain) if _ends_in_number(domain) else domain


def _valid_label(label: str) -> bool:
    if not label.startswith("xn--"):
        return True
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
        decoded.encode("idna")
    except UnicodeError:
        return False
    return bool(decoded)


def _ends_in_number(domain: str) -> bool:
    labels = domain.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    if last and last.isdigit():
        return True
    return re.fullmatch(r"0[xX][0-9A-Fa-f]*", last) is not None


def _ipv4(domain: str) -> str | None:
    parts = domain.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers: list[int] = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            radix, digits, allowed = 16, part[2:], "0123456789abcdefABCDEF"
        elif len(part) > 1 and part.startswith("0"):
            radix, digits, allowed = 8, part[1:], "01234567"
        else:
            radix, digits, allowed = 10, part, "0123456789"
        if not part or any(c not in allowed for c in digits):
            return None
        numbers.append(int(digits, radix) if digits else 0)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1] + sum(n * 256 ** (3 - i) for i, n in enumerate(numbers[:-1]))
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))


def _serialize_path(path: str) -> str:
    if not path:
        return ""
    segments: list[str] = []
    pieces = path[1:].split("/")
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        lowered = piece.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif lowered in (".", "%2e"):
            if last:
                segments.append("")
        else:
            segments.append("".join(_escape_path_char(c) for c in piece))
    return "/" + "/".join(segments)


def _escape_path_char(c: str) -> str:
    if ord(c) < 0x20 or ord(c) > 0x7E or c in _PATH_ESCAPE:
        return urllib.parse.quote(c, safe="")
    return c
