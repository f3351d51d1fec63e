"""Kubernetes' CEL libraries that cel-cpp lacks, as functions of a cel-expr-python extension.

cel-cpp brings CEL's standard library and its extensions (strings, lists, sets, regex,
math, optional, bindings, encoders: :data:`CEL_EXTENSIONS`). Kubernetes adds libraries of
its own (k8s.io/apiserver/pkg/cel/library); this module implements the ones a tenant rule
needs, with Kubernetes' names and results:

- quantities (``quantity``, ``isQuantity`` and the Quantity methods) on the project's
  exact quantity code (:mod:`webhook.core.quantity`): parsing, rounding and comparison
  exactly as the API server does them;
- lists (``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``);
- regular expressions (``find``, ``findAll``), run by cel-cpp's RE2 (``regex.extract``),
  so a pattern matches as in Kubernetes and in linear time;
- URLs (``url``, ``isURL`` and the URL getters), IP addresses and CIDRs (``ip``, ``isIP``,
  ``ip.isCanonical``, ``cidr``, ``isCIDR``, their methods and ``string()`` of either).

The binding cannot hand CEL an opaque Python object, so a Quantity, URL, IP or CIDR is a
one-entry map (``{"__quantity__": "1073741824"}``) that only these functions read; the
type checker sees ``map(string, string)``. Quantities hold their exact value, so equal
quantities are equal maps (``quantity('1Gi') == quantity('1073741824')``, as in Kubernetes).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from cel_expr_python import cel

from webhook.core.quantity import MAX_INT64, QuantityError, exact_add, parse_quantity

__all__ = ["CEL_EXTENSIONS", "kubernetes_library", "regex_runtime"]

# cel-cpp's own extensions, enabled through the environment configuration
CEL_EXTENSIONS = ("bindings", "encoders", "lists", "math", "optional", "regex", "sets", "strings")

QUANTITY, URL, IP, CIDR = "__quantity__", "__url__", "__ip__", "__cidr__"

_S = cel.Type.STRING
_I = cel.Type.INT
_B = cel.Type.BOOL
_F = cel.Type.DOUBLE
_D = cel.Type.DYN
_OPAQUE = cel.Type.Map(cel.Type.STRING, cel.Type.STRING)  # a Quantity, URL, IP or CIDR
_LIST = cel.Type.List(cel.Type.DYN)
_STRINGS = cel.Type.List(cel.Type.STRING)
_QUERY = cel.Type.Map(cel.Type.STRING, cel.Type.List(cel.Type.STRING))


# --- quantities ---------------------------------------------------------------------------------

def _exact(value: Decimal) -> str:
    if value.is_zero():
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _quantity_value(value: Decimal) -> dict[str, str]:
    return {QUANTITY: _exact(value)}


def _q(arg: Any) -> Decimal:
    if not isinstance(arg, dict) or QUANTITY not in arg:
        raise ValueError("not a quantity (make one with quantity('...'))")
    return Decimal(arg[QUANTITY])


def quantity(text: str) -> dict[str, str]:
    try:
        return _quantity_value(parse_quantity(text))
    except QuantityError as exc:
        raise ValueError(f"invalid quantity {exc}") from None


def is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


def _sign(q: Any) -> int:
    value = _q(q)
    return 0 if value.is_zero() else (1 if value > 0 else -1)


def _is_integer(q: Any) -> bool:
    value = _q(q)
    return value == value.to_integral_value() and -MAX_INT64 - 1 <= value <= MAX_INT64


def _as_integer(q: Any) -> int:
    value = _q(q)
    if value != value.to_integral_value():
        raise ValueError(f"cannot convert quantity {_exact(value)} to an integer: it has a fractional part")
    if not -MAX_INT64 - 1 <= value <= MAX_INT64:
        raise ValueError(f"cannot convert quantity {_exact(value)} to an integer: out of int64 range")
    return int(value)


def _as_float(q: Any) -> float:
    return float(_q(q))


def _add(q: Any, other: Any) -> dict[str, str]:
    right = Decimal(other) if isinstance(other, int) else _q(other)
    return _quantity_value(exact_add(_q(q), right))


def _sub(q: Any, other: Any) -> dict[str, str]:
    right = Decimal(other) if isinstance(other, int) else _q(other)
    return _quantity_value(exact_add(_q(q), right.copy_negate()))


def _compare(q: Any, other: Any) -> int:
    left, right = _q(q), _q(other)
    return 0 if left == right else (1 if left > right else -1)


# --- lists --------------------------------------------------------------------------------------

def _comparable(values: Sequence[Any]) -> None:
    kinds = {type(v) for v in values}
    if kinds - {int, float, str, bytes, bytearray} or (kinds & {str} and kinds - {str}) or \
            (kinds & {bytes, bytearray} and kinds - {bytes, bytearray}):
        raise ValueError("list elements must be of one comparable type (int, uint, double, string or bytes)")


def _is_sorted(values: list[Any]) -> bool:
    _comparable(values)
    return all(values[i] <= values[i + 1] for i in range(len(values) - 1))


def _sum(values: list[Any]) -> Any:
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError("sum() needs a list of numbers")
    return sum(values) if values else 0


def _min(values: list[Any]) -> Any:
    if not values:
        raise ValueError("min called on empty list")
    _comparable(values)
    return min(values)


def _max(values: list[Any]) -> Any:
    if not values:
        raise ValueError("max called on empty list")
    _comparable(values)
    return max(values)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                             and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _index_of(values: list[Any], item: Any) -> int:
    return next((i for i, v in enumerate(values) if _same(v, item)), -1)


def _last_index_of(values: list[Any], item: Any) -> int:
    return next((i for i in range(len(values) - 1, -1, -1) if _same(values[i], item)), -1)


# --- regular expressions, by RE2 ----------------------------------------------------------------

def _non_capturing(pattern: str) -> str:
    """``pattern`` with its groups made non-capturing (RE2 syntax), so that it can be wrapped in one."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                if end != -1:
                    out.append(pattern[i:end + 2])
                    i = end + 2
                    continue
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is literal
                out.append("]")
                i += 1
            continue
        if c == "(":
            if pattern.startswith("(?P<", i) or (pattern.startswith("(?<", i) and not pattern.startswith("(?<=", i)
                                                 and not pattern.startswith("(?<!", i)):
                end = pattern.find(">", i)
                if end != -1:
                    out.append("(?:")
                    i = end + 1
                    continue
            if not pattern.startswith("(?", i):
                out.append("(?:")
                i += 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


@cache
def regex_runtime() -> tuple[Any, Any]:
    """Two tiny programs over cel-cpp's RE2 regex extension: the first match, every match."""
    env = cel.NewEnv(config=_config(), variables={"s": _S, "re": _S})
    return (env.compile("regex.extract(s, re).orValue('')"), env.compile("regex.extractAll(s, re)"))


def _regex(pattern: str) -> str:
    return "(" + _non_capturing(pattern) + ")"


def _run(program: Any, text: str, pattern: str) -> Any:
    result = program.eval(data={"s": text, "re": _regex(pattern)})
    if result.type() == cel.Type.ERROR:
        reason = str(result.value()).split(": ", 1)[-1].rsplit(": ", 1)[0]  # the status code and our wrapping off
        raise ValueError(f"{reason} in {pattern!r}")
    return result.plain_value()


def _find(text: str, pattern: str) -> str:
    return str(_run(regex_runtime()[0], text, pattern))


def _find_all(text: str, pattern: str) -> list[str]:
    return [str(m) for m in _run(regex_runtime()[1], text, pattern)]


def _find_all_limit(text: str, pattern: str, limit: int) -> list[str]:
    if limit == 0:
        return []
    found = _find_all(text, pattern)
    return found if limit < 0 else found[:limit]


# --- URLs ---------------------------------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def _parse_url(text: str) -> Any:
    """Go's url.ParseRequestURI, as Kubernetes' url() uses it: an absolute URI or an absolute path."""
    if not text or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError(f"URL parse error during conversion from string: {text!r}")
    if not (text.startswith("/") or _SCHEME.match(text)):
        raise ValueError(f"URL parse error during conversion from string: {text!r}: not an absolute URI or path")
    parts = urlsplit(text, allow_fragments=False)
    if " " in parts.netloc:
        raise ValueError(f"URL parse error during conversion from string: {text!r}: invalid host")
    parts.port  # noqa: B018 - raises ValueError on an invalid port
    return parts


def url(text: str) -> dict[str, str]:
    _parse_url(text)
    return {URL: text}


def is_url(text: str) -> bool:
    try:
        _parse_url(text)
    except ValueError:
        return False
    return True


def _u(arg: Any) -> Any:
    if not isinstance(arg, dict) or URL not in arg:
        raise ValueError("not a URL (make one with url('...'))")
    return _parse_url(arg[URL])


def _scheme(u: Any) -> str:
    return str(_u(u).scheme)


def _host(u: Any) -> str:
    return str(_u(u).netloc.rpartition("@")[2])


def _hostname(u: Any) -> str:
    host = _host(u)
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _port(u: Any) -> str:
    host = _host(u)
    tail = host[host.find("]") + 1:] if host.startswith("[") else host
    return tail.rsplit(":", 1)[1] if ":" in tail else ""


def _escaped_path(u: Any) -> str:
    return quote(str(_u(u).path), safe="/:@!$&'()*+,;=-._~%")


def _query(u: Any) -> dict[str, list[str]]:
    return {k: list(v) for k, v in parse_qs(str(_u(u).query), keep_blank_values=True).items()}


# --- IP addresses and CIDRs ---------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _parse_ip(text: str) -> Address:
    """Kubernetes' ip(): no zone, no IPv4-mapped IPv6 address, no leading zeros."""
    if "%" in text:
        raise ValueError(f"IP address with zone value is not allowed: {text!r}")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"IP Address {text!r} parse error during conversion from string") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise ValueError(f"IPv4-mapped IPv6 address is not allowed: {text!r}")
    return address


def _parse_cidr(text: str) -> Interface:
    if "%" in text:
        raise ValueError(f"CIDR with zone value is not allowed: {text!r}")
    if "/" not in text:
        raise ValueError(f"network address parse error during conversion from string: {text!r}")
    try:
        network = ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError(f"network address parse error during conversion from string: {text!r}") from None
    if isinstance(network, ipaddress.IPv6Interface) and network.ip.ipv4_mapped is not None:
        raise ValueError(f"IPv4-mapped IPv6 address is not allowed: {text!r}")
    return network


def ip(text: str) -> dict[str, str]:
    return {IP: str(_parse_ip(text))}


def is_ip(text: str) -> bool:
    try:
        _parse_ip(text)
    except ValueError:
        return False
    return True


def _is_canonical(text: str) -> bool:
    return str(_parse_ip(text)) == text


def _ip(arg: Any) -> Address:
    if not isinstance(arg, dict) or IP not in arg:
        raise ValueError("not an IP address (make one with ip('...'))")
    return ipaddress.ip_address(arg[IP])


def _family(a: Any) -> int:
    return _ip(a).version


def _unspecified(a: Any) -> bool:
    return _ip(a).is_unspecified


def _loopback(a: Any) -> bool:
    return _ip(a).is_loopback


def _link_local_multicast(a: Any) -> bool:
    address = _ip(a)
    if address.version == 4:
        return address in ipaddress.ip_network("224.0.0.0/24")
    return address.is_multicast and (int(address) >> 112) & 0xF == 2


def _link_local_unicast(a: Any) -> bool:
    address = _ip(a)
    if address.version == 4:
        return address in ipaddress.ip_network("169.254.0.0/16")
    return address in ipaddress.ip_network("fe80::/10")


def _global_unicast(a: Any) -> bool:
    """Go's net.IP.IsGlobalUnicast: none of unspecified, loopback, multicast, link-local, broadcast."""
    address = _ip(a)
    if address.is_unspecified or address.is_loopback or address.is_multicast or _link_local_unicast(a):
        return False
    return not (address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255"))


def cidr(text: str) -> dict[str, str]:
    return {CIDR: str(_parse_cidr(text))}


def is_cidr(text: str) -> bool:
    try:
        _parse_cidr(text)
    except ValueError:
        return False
    return True


def _c(arg: Any) -> Interface:
    if not isinstance(arg, dict) or CIDR not in arg:
        raise ValueError("not a CIDR (make one with cidr('...'))")
    return ipaddress.ip_interface(arg[CIDR])


def _contains_ip(c: Any, other: Any) -> bool:
    address = _parse_ip(other) if isinstance(other, str) else _ip(other)
    network = _c(c).network
    return address.version == network.version and address in network


def _contains_cidr(c: Any, other: Any) -> bool:
    inner = (_parse_cidr(other) if isinstance(other, str) else _c(other)).network
    outer = _c(c).network
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _cidr_ip(c: Any) -> dict[str, str]:
    return {IP: str(_c(c).ip)}


def _masked(c: Any) -> dict[str, str]:
    return {CIDR: str(_c(c).network)}


def _prefix_length(c: Any) -> int:
    return _c(c).network.prefixlen


def _to_string(value: Any) -> str:
    """``string(ip)`` and ``string(cidr)``, as Kubernetes converts them."""
    if isinstance(value, dict) and IP in value:
        return str(value[IP])
    if isinstance(value, dict) and CIDR in value:
        return str(value[CIDR])
    raise ValueError("no matching overload for string(map): string() takes an IP address or a CIDR")


# --- the extension ------------------------------------------------------------------------------

def _overload(oid: str, result: Any, params: list[Any], impl: Callable[..., Any], member: bool = True) -> Any:
    return cel.Overload(oid, result, params, is_member=member, impl=_guarded(impl))


def _guarded(impl: Callable[..., Any]) -> Callable[..., Any]:
    """Every failure of a library function is a CEL error with a message (never a Python traceback)."""
    def call(*args: Any) -> Any:
        try:
            return impl(*args)
        except (ValueError, TypeError, ArithmeticError, InvalidOperation) as exc:
            raise ValueError(str(exc)) from None
    call.__name__ = impl.__name__
    return call


def _decls() -> list[Any]:
    fd, o = cel.FunctionDecl, _overload
    return [
        # quantities
        fd("quantity", [o("quantity_string", _OPAQUE, [_S], quantity, member=False)]),
        fd("isQuantity", [o("isQuantity_string", _B, [_S], is_quantity, member=False)]),
        fd("sign", [o("quantity_sign", _I, [_OPAQUE], _sign)]),
        fd("isInteger", [o("quantity_isInteger", _B, [_OPAQUE], _is_integer)]),
        fd("asInteger", [o("quantity_asInteger", _I, [_OPAQUE], _as_integer)]),
        fd("asApproximateFloat", [o("quantity_asApproximateFloat", _F, [_OPAQUE], _as_float)]),
        fd("add", [o("quantity_add", _OPAQUE, [_OPAQUE, _OPAQUE], _add),
                   o("quantity_add_int", _OPAQUE, [_OPAQUE, _I], _add)]),
        fd("sub", [o("quantity_sub", _OPAQUE, [_OPAQUE, _OPAQUE], _sub),
                   o("quantity_sub_int", _OPAQUE, [_OPAQUE, _I], _sub)]),
        fd("compareTo", [o("quantity_compareTo", _I, [_OPAQUE, _OPAQUE], _compare)]),
        fd("isGreaterThan", [o("quantity_isGreaterThan", _B, [_OPAQUE, _OPAQUE],
                               lambda a, b: _compare(a, b) > 0)]),
        fd("isLessThan", [o("quantity_isLessThan", _B, [_OPAQUE, _OPAQUE], lambda a, b: _compare(a, b) < 0)]),
        # lists
        fd("isSorted", [o("list_isSorted", _B, [_LIST], _is_sorted)]),
        fd("sum", [o("list_sum", _D, [_LIST], _sum)]),
        fd("min", [o("list_min", _D, [_LIST], _min)]),
        fd("max", [o("list_max", _D, [_LIST], _max)]),
        fd("indexOf", [o("list_indexOf", _I, [_LIST, _D], _index_of)]),
        fd("lastIndexOf", [o("list_lastIndexOf", _I, [_LIST, _D], _last_index_of)]),
        # regular expressions
        fd("find", [o("string_find", _S, [_S, _S], _find)]),
        fd("findAll", [o("string_findAll", _STRINGS, [_S, _S], _find_all),
                       o("string_findAll_limit", _STRINGS, [_S, _S, _I], _find_all_limit)]),
        # URLs
        fd("url", [o("url_string", _OPAQUE, [_S], url, member=False)]),
        fd("isURL", [o("isURL_string", _B, [_S], is_url, member=False)]),
        fd("getScheme", [o("url_getScheme", _S, [_OPAQUE], _scheme)]),
        fd("getHost", [o("url_getHost", _S, [_OPAQUE], _host)]),
        fd("getHostname", [o("url_getHostname", _S, [_OPAQUE], _hostname)]),
        fd("getPort", [o("url_getPort", _S, [_OPAQUE], _port)]),
        fd("getEscapedPath", [o("url_getEscapedPath", _S, [_OPAQUE], _escaped_path)]),
        fd("getQuery", [o("url_getQuery", _QUERY, [_OPAQUE], _query)]),
        # IP addresses and CIDRs
        fd("ip", [o("ip_string", _OPAQUE, [_S], ip, member=False),
                  o("cidr_ip", _OPAQUE, [_OPAQUE], _cidr_ip)]),
        fd("isIP", [o("isIP_string", _B, [_S], is_ip, member=False)]),
        fd("ip.isCanonical", [o("ip_isCanonical", _B, [_S], _is_canonical, member=False)]),
        fd("family", [o("ip_family", _I, [_OPAQUE], _family)]),
        fd("isUnspecified", [o("ip_isUnspecified", _B, [_OPAQUE], _unspecified)]),
        fd("isLoopback", [o("ip_isLoopback", _B, [_OPAQUE], _loopback)]),
        fd("isLinkLocalMulticast", [o("ip_isLinkLocalMulticast", _B, [_OPAQUE], _link_local_multicast)]),
        fd("isLinkLocalUnicast", [o("ip_isLinkLocalUnicast", _B, [_OPAQUE], _link_local_unicast)]),
        fd("isGlobalUnicast", [o("ip_isGlobalUnicast", _B, [_OPAQUE], _global_unicast)]),
        fd("cidr", [o("cidr_string", _OPAQUE, [_S], cidr, member=False)]),
        fd("isCIDR", [o("isCIDR_string", _B, [_S], is_cidr, member=False)]),
        fd("containsIP", [o("cidr_containsIP_string", _B, [_OPAQUE, _S], _contains_ip),
                          o("cidr_containsIP_ip", _B, [_OPAQUE, _OPAQUE], _contains_ip)]),
        fd("containsCIDR", [o("cidr_containsCIDR_string", _B, [_OPAQUE, _S], _contains_cidr),
                            o("cidr_containsCIDR_cidr", _B, [_OPAQUE, _OPAQUE], _contains_cidr)]),
        fd("masked", [o("cidr_masked", _OPAQUE, [_OPAQUE], _masked)]),
        fd("prefixLength", [o("cidr_prefixLength", _I, [_OPAQUE], _prefix_length)]),
        fd("string", [o("ip_or_cidr_string", _S, [_OPAQUE], _to_string, member=False)]),
    ]


@cache
def _config() -> Any:
    lines = ["extensions:"] + [f'  - name: "{name}"' for name in CEL_EXTENSIONS]
    return cel.NewEnvConfigFromYaml("\n".join(lines) + "\n")


@cache
def kubernetes_library() -> Any:
    """The extension holding every function above (built once per process)."""
    return cel.CelExtension("tenantguard.kubernetes", _decls())


def new_env(variables: dict[str, Any]) -> Any:
    """An environment with cel-cpp's extensions, Kubernetes' libraries and ``variables`` (name -> type)."""
    return cel.NewEnv(config=_config(), variables=variables, extensions=[kubernetes_library()])


FUNCTIONS = (
    "quantity", "isQuantity", "sign", "isInteger", "asInteger", "asApproximateFloat", "add", "sub", "compareTo",
    "isGreaterThan", "isLessThan", "isSorted", "sum", "min", "max", "indexOf", "lastIndexOf", "find", "findAll",
    "url", "isURL", "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath", "getQuery", "ip", "isIP",
    "ip.isCanonical", "family", "isUnspecified", "isLoopback", "isLinkLocalMulticast", "isLinkLocalUnicast",
    "isGlobalUnicast", "cidr", "isCIDR", "containsIP", "containsCIDR", "masked", "prefixLength", "string",
)
