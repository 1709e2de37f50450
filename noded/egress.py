"""`http.fetch` for agents: the node makes the request, after checking it against the step's
`capabilities.http.allowedHosts` — on the URL asked for and again on every redirect.

Why the node and not the router: the node owns the attempt (its manifest, its timeout, its
accounting) and the worker already hands it the guest's host calls over the pipe; the router is
the host's LLM gateway and knows nothing of steps' network manifests.

The rules, each a denial (`DENIED`, with the reason in the step's log) when broken:

- only `http` and `https`; the host (and port, when the entry names one) must match an entry:
  `api.example.com`, `api.example.com:8443` or `*.example.com` (any subdomain, not the apex);
- the host name is resolved once, every address it resolves to is checked, and the connection
  goes to a checked address (the resolver is pinned): no DNS-rebinding window between the check
  and the connection;
- loopback, link-local (cloud metadata, 169.254.169.254), private, multicast, reserved and
  unspecified addresses are refused unless an entry names that host exactly (not by a wildcard);
- the guest cannot set `Host` (nor hop-by-hop headers); redirects are followed by the node, at
  most `MAX_REDIRECTS`, each checked like the first request.

Request `{"url", "method"?: "GET", "headers"?: {}, "body"?: "text" | "body_base64"?: "...",
"timeout_s"?: 10}`; response `{"status", "headers", "url" (after redirects), "body" (text) or
"body_base64", "truncated"}`. Bodies are capped at `MAX_BODY_BYTES` each way.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from agentflow.telemetry.tracing import Tracing, set_error
from noded.sandbox import HostCallError, HostCallRefused

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024
"""Largest response body handed to the guest (the rest is cut, `truncated: true`), and largest request body."""
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 60.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
FORBIDDEN_HEADERS = frozenset(
    {"host", "connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length"}
)  # fmt: skip
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolve = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> the addresses it resolves to (the system resolver unless a test injects one)."""


@dataclass(frozen=True, slots=True)
class AllowedHost:
    host: str  # lower case; "*.example.com" for a wildcard
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> AllowedHost:
        host, _, port = entry.lower().rpartition(":") if entry.count(":") == 1 else (entry.lower(), "", "")
        return cls(host or entry.lower(), int(port) if port else None)

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host

    @property
    def exact(self) -> bool:
        return not self.host.startswith("*.")


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedResolver(AbstractResolver):
    """Answers aiohttp with the addresses the node checked, and nothing else."""

    def __init__(self, host: str, addresses: Sequence[str]) -> None:
        self._host = host
        self._addresses = list(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"{host} was not checked")
        return [
            ResolveResult(
                hostname=host, host=a, port=port, family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0, flags=socket.AI_NUMERICHOST,
            )
            for a in self._addresses
        ]  # fmt: skip

    async def close(self) -> None:
        return None


def _deny(reason: str) -> HostCallRefused:
    return HostCallRefused(HostCallError.DENIED, f"http.fetch denied: {reason}")


def _bad(reason: str) -> HostCallRefused:
    return HostCallRefused(HostCallError.BAD_REQUEST, f"bad http.fetch request: {reason}")


def _special(address: str) -> str | None:
    """What kind of address may not be fetched unless named exactly; None for a public one."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, test in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                       ("unspecified", ip.is_unspecified), ("multicast", ip.is_multicast),
                       ("private", ip.is_private), ("reserved", ip.is_reserved)):  # fmt: skip
        if test:
            return kind
    return None


class Egress:
    """One step attempt's outbound HTTP, checked against its allow-list."""

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        *,
        resolve: Resolve = system_resolve,
        tracing: Tracing | None = None,
        parent: Context | None = None,
    ) -> None:
        self._allowed = [AllowedHost.parse(h) for h in allowed_hosts]
        self._resolve = resolve
        self._tracing = tracing or Tracing.disabled()
        self._parent = parent  # the attempt's agent.execute span
        self.fetched_bytes = 0
        self.denied = 0
        self.truncated = 0  # responses cut at MAX_BODY_BYTES (the `fetch size` limit)

    async def fetch(self, request: Any, seconds_left: float) -> dict[str, Any]:
        method, url, headers, body, timeout_s = _parse(request)
        timeout_s = max(min(timeout_s, seconds_left), 0.001)
        attributes = {"http.request.method": method, "url.full": url, "server.address": urlsplit(url).hostname or ""}
        with self._tracing.span("http.fetch", parent=self._parent, kind=SpanKind.CLIENT, attributes=attributes) as span:
            try:
                async with asyncio.timeout(timeout_s):
                    answer = await self._follow(method, url, headers, body)
            except TimeoutError:
                set_error(span, f"timed out after {timeout_s:.1f}s")
                raise HostCallRefused(
                    HostCallError.UNAVAILABLE, f"http.fetch {url}: timed out after {timeout_s:.1f}s"
                ) from None
            except HostCallRefused as refused:
                if refused.code is HostCallError.DENIED:
                    self.denied += 1
                set_error(span, f"{refused.code.name.lower()}: {refused}")
                raise
            span.set_attribute("http.response.status_code", int(answer.get("status", 0)))
            return answer

    async def _follow(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
        for _ in range(MAX_REDIRECTS + 1):
            host, _, addresses = await self._check(url)
            connector = aiohttp.TCPConnector(resolver=_PinnedResolver(host, addresses), use_dns_cache=False)
            try:
                async with (
                    aiohttp.ClientSession(connector=connector) as session,
                    session.request(method, url, headers=headers, data=body, allow_redirects=False) as response,
                ):
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        url = urljoin(url, response.headers["Location"])
                        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                            method, body = "GET", None
                        continue
                    data = await _read_capped(response, MAX_BODY_BYTES + 1)
                    self.fetched_bytes += min(len(data), MAX_BODY_BYTES)
                    self.truncated += len(data) > MAX_BODY_BYTES
                    return _answer(response, url, data)
            except aiohttp.ClientError as exc:
                raise HostCallRefused(HostCallError.UNAVAILABLE, f"http.fetch {url}: {exc}") from None
        raise _deny(f"more than {MAX_REDIRECTS} redirects")

    async def _check(self, url: str) -> tuple[str, int, list[str]]:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise _deny(f'{url}: only http and https URLs may be fetched, not "{parts.scheme}"')
        host = (parts.hostname or "").lower()
        if not host:
            raise _bad(f"{url} names no host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise _bad(f"{url} has an invalid port") from None
        matched = [a for a in self._allowed if a.matches(host, port)]
        if not matched:
            raise _deny(f"{host}:{port} is not in capabilities.http.allowedHosts")
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise HostCallRefused(HostCallError.UNAVAILABLE, f"http.fetch: cannot resolve {host}: {exc}") from None
        if not addresses:
            raise HostCallRefused(HostCallError.UNAVAILABLE, f"http.fetch: {host} resolves to no address")
        named_exactly = any(a.exact for a in matched)
        for address in addresses:
            kind = _special(address)
            if kind is not None and not named_exactly:
                raise _deny(f"{host} resolves to {address}, a {kind} address; name {host} exactly to allow it")
        return host, port, addresses


def _parse(request: Any) -> tuple[str, str, dict[str, str], bytes | None, float]:
    if not isinstance(request, dict):
        raise _bad("the request must be a JSON object")
    unknown = set(request) - {"url", "method", "headers", "body", "body_base64", "timeout_s"}
    if unknown:
        raise _bad(f"unknown field {sorted(unknown)[0]!r}")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise _bad('"url" must be a string')
    method = request.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _bad(f"method must be one of {', '.join(sorted(METHODS))}")
    headers = request.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise _bad("headers must be an object of strings")
    forbidden = sorted(k for k in headers if k.lower() in FORBIDDEN_HEADERS)
    if forbidden:
        raise _deny(f"the header {forbidden[0]!r} is set by the node, not the agent")
    body: bytes | None = None
    if "body" in request and "body_base64" in request:
        raise _bad('give "body" or "body_base64", not both')
    if "body" in request:
        if not isinstance(request["body"], str):
            raise _bad("body must be a string")
        body = request["body"].encode()
    elif "body_base64" in request:
        try:
            body = base64.b64decode(request["body_base64"], validate=True)
        except (ValueError, TypeError):
            raise _bad("body_base64 is not base64") from None
    if body is not None and len(body) > MAX_BODY_BYTES:
        raise HostCallRefused(HostCallError.TOO_LARGE, f"http.fetch: the request body is over {MAX_BODY_BYTES} bytes")
    timeout = request.get("timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise _bad(f"timeout_s must be a number of seconds from 0 to {MAX_TIMEOUT_S:.0f}")
    return method.upper(), url, headers, body, float(timeout)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Up to `limit` bytes of the body; the rest is never read."""
    data = bytearray()
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _answer(response: aiohttp.ClientResponse, url: str, data: bytes) -> dict[str, Any]:
    truncated = len(data) > MAX_BODY_BYTES
    data = data[:MAX_BODY_BYTES]
    out: dict[str, Any] = {
        "status": response.status,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "url": url,
        "truncated": truncated,
    }
    try:
        out["body"] = data.decode("utf-8")
    except UnicodeDecodeError:
        out["body_base64"] = base64.b64encode(data).decode("ascii")
    return out
