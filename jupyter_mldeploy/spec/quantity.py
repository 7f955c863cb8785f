"""Kubernetes quantities ('500m', '4Gi', '1e3'): the one grammar, for specs and for what the cluster
reports. Pure.
"""

from __future__ import annotations

import math
import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, localcontext

from ..errors import SpecError
from .rules import _describe

# Quantities

_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<int>[0-9]*)(?:(?P<dot>\.)(?P<frac>[0-9]*))?"
    r"(?P<suffix>[KMGTPE]i|[eE][+-]?[0-9]+|[numkMGTPE])?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY_MAX = Decimal(2**63 - 1)  # Kubernetes silently caps larger quantities to this
_NANO = Decimal("1e-9")  # Kubernetes silently rounds finer quantities up to this
_QUANTITY_RULE = ("write a number with an optional suffix, such as 500m, 2, 1.5, 4Gi, 512Mi or 1e3 "
                  "(Kubernetes quantity)")


def _quantity_text(value: object, field_: str) -> str:
    # Numbers come from YAML (`cpu: 2`) and Python callers; their str() is kept as the quantity text.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError(f"{field_} must be a quantity such as '2' or '4Gi', got {_describe(value)}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{field_} {value!r} is not a Kubernetes quantity: {_QUANTITY_RULE}.")
    return value if isinstance(value, str) else str(value)


def _show(text: str) -> str:
    """Quote a value for a message; a very long one is shown by its ends and its length."""
    return repr(text) if len(text) <= 80 else f"{text[:30]!r}...{text[-10:]!r} ({len(text)} characters)"


def _suffix_hint(text: str) -> str:
    """Name the right spelling of a misspelt unit ('4GB', '1K', '2gi'), without applying it."""
    m = re.fullmatch(r"([+-]?[0-9.]+)([A-Za-z]{1,3})", text)
    if not m:
        return ""
    number, unit = m.groups()
    unit = unit[:-1] if len(unit) > 1 and unit[-1] in "Bb" else unit
    base = unit[:1].upper()
    if base not in "KMGTPE" or unit[1:] not in ("", "i", "I"):
        return ""
    decimal = "k" if base == "K" else base
    return f"; did you mean {number}{decimal} or {number}{base}i?"


def _quantity(value: object, field_: str) -> tuple[str, Decimal]:
    text = _quantity_text(value, field_)
    m = _QUANTITY.fullmatch(text)
    # The grammar needs digits on one side of the dot: '.', '' and '-' alone are not numbers.
    if m is None or not (m["int"] or m["frac"]):
        raise SpecError(f"{field_} {_show(text)} is not a Kubernetes quantity: {_QUANTITY_RULE}"
                        f"{_suffix_hint(text) or '.'}")
    suffix = m["suffix"] or ""
    exponent, factor = 0, 1
    if suffix in _BINARY:
        factor = 1024 ** _BINARY[suffix]
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        sign, digits = suffix[1:2].strip("0123456789"), suffix[1:].lstrip("+-").lstrip("0") or "0"
        # Kubernetes reads the exponent as an int32; the length test also keeps int() cheap.
        if len(digits) > 10 or int(digits) > 2**31 - 1:
            raise SpecError(f"{field_} {_show(text)} has an exponent out of range: Kubernetes accepts at "
                            f"most {2**31 - 1}.")
        exponent = int(sign + digits)
    else:
        exponent = _DECIMAL[suffix]
    number = Decimal(f"{m['sign']}{m['int'] or '0'}.{m['frac'] or '0'}E{exponent}")
    # An exact context: the default 28 digits would round long quantities before they are compared.
    with localcontext(Context(prec=len(text) + 60, Emax=MAX_EMAX, Emin=MIN_EMIN)):
        amount = number * factor
        if abs(amount) > _QUANTITY_MAX:
            raise SpecError(f"{field_} {_show(text)} is too large: Kubernetes quantities are at most "
                            f"{2**63 - 1} base units and larger ones are silently capped.")
        if amount != 0 and (amount / _NANO) % 1 != 0:
            raise SpecError(f"{field_} {_show(text)} is finer than 1n (one billionth), which Kubernetes "
                            f"would silently round up.")
    return text, amount


def parse_quantity(text: str | int | float, field: str = "quantity") -> str:
    """Validate a non-negative Kubernetes quantity and return its text unchanged.

    The grammar: optional sign, digits with an optional decimal part, then one suffix: a binary SI
    suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m k M G T P E) or an exponent (e3, E-2).
    Values Kubernetes would silently change (above 2^63-1, or finer than 1n) are refused too.
    """
    out, amount = _quantity(text, field)
    if amount < 0:
        raise SpecError(f"{field} {out!r} is negative: resource quantities must be zero or more.")
    return out


def quantity_value(text: str | int | float) -> Decimal:
    """The exact value of a quantity in base units (cores for cpu, bytes for memory), for comparisons."""
    return _quantity(text, "quantity")[1]


# ---------------------------------------------------------------------------------------------------------


def reported_amount(value: object) -> float | None:
    """A quantity the cluster reports (a pod's request, a node's allocatable) in base units, as a float
    for sums and messages; None when it is not one. Same grammar as parse_quantity, which validates input."""
    try:
        return float(_quantity(value.strip() if isinstance(value, str) else value, "quantity")[1])
    except SpecError:
        return None
