"""RFC 8785 (JSON Canonicalization Scheme) serialisation, the basis of package identity.

Written here rather than imported so that the standard's digest depends on nothing but this file
and the RFC; the tests pin it against the RFC's own examples.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal

from pydantic import JsonValue


def _number(value: float) -> str:
    """ECMAScript Number::toString, which RFC 8785 section 3.2.2.3 mandates for numbers."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError("NaN and Infinity are not JSON numbers")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    exponent = digits_tuple.exponent
    if not isinstance(exponent, int):  # pragma: no cover - finite floats always have int exponents
        raise ValueError("non-finite number")
    k = len(digits)
    n = exponent + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def canonicalize(value: JsonValue) -> bytes:
    """The canonical UTF-8 bytes of a JSON value."""
    return _serialize(value).encode("utf-8")


def _serialize(value: JsonValue) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) > 2**53:
            # I-JSON (RFC 7493) limits integers to what an IEEE double holds exactly.
            raise ValueError(f"integer {value} is outside the I-JSON range")
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_serialize(item) for item in value) + "]"
    if isinstance(value, Mapping):
        members = sorted(value.items(), key=lambda kv: _utf16_key(kv[0]))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _serialize(v) for k, v in members) + "}"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
