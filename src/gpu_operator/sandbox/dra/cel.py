"""The CEL of DRA selectors, evaluated by ``cel-python`` (celpy): a device is the variable
``device`` (``driver``, ``attributes[domain][name]``, ``capacity[domain][name]``,
``allowMultipleAllocations``) and Kubernetes' extension types are here: ``quantity()`` with
``compareTo``/``isGreaterThan``/``isLessThan``/``add``/``sub``/``asInteger``/``isInteger``/
``asApproximateFloat``/``sign``, and ``semver()`` with ``major``/``minor``/``patch``/
``compareTo``/``isGreaterThan``/``isLessThan`` (a ``version`` attribute reads as a semver).

As in Kubernetes, an unknown attribute domain reads as an empty map, a missing attribute is a
runtime error (guard with ``has()`` or ``in``), and an expression must give a bool.

Why ``cel-python``: of the maintained CEL libraries on PyPI it is the one whose functions may
return objects of our own types, so ``quantity()`` and ``semver()`` are opaque values with
methods and type errors as in Kubernetes (``memory > 3`` is an error, not a comparison). The
Rust-based ``common-expression-language`` (0.10) evaluates ~40x faster but converts every
function result to a CEL primitive (a Quantity would have to be an int, a Semver a string);
Google's ``cel-expr-python`` is at 0.1. celpy's tree-walking costs 1.5-3.5 ms an expression,
so ``Selector.selects`` keeps one verdict per distinct view a device gives an expression."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from gpu_operator.sandbox.dra.quantity import QuantityError, parse_quantity


class CelError(ValueError):
    """An expression that does not compile, fails at run time, or gives no bool."""


@functools.total_ordering
class Quantity:
    """``resource.Quantity`` as CEL sees it: opaque, compared through its methods or ``==``."""

    def __init__(self, value: Fraction, text: str):
        self.value, self.text = value, text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value < other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"quantity({self.text!r})"


_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


@functools.total_ordering
class Semver:
    """A semantic version (``semver("1.2.3")``, a ``version`` attribute)."""

    def __init__(self, text: str):
        match = _SEMVER.match(text)
        if match is None:
            raise ValueError(f"invalid semver: {text!r}")
        self.text = text
        self.core = (int(match[1]), int(match[2]), int(match[3]))
        self.pre = tuple(match[4].split(".")) if match[4] else ()

    def _key(self) -> tuple[Any, ...]:
        # A pre-release sorts before its release; numeric identifiers before alphanumeric ones.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.core, 0 if self.pre else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Semver) and self._key() == other._key()

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Semver):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"semver({self.text!r})"


def _normalize_semver(text: str) -> str:
    """``semver(s, true)``: a leading ``v`` dropped, missing minor/patch filled with 0."""
    text = text.removeprefix("v")
    cut = next((i for i, ch in enumerate(text) if ch in "-+"), len(text))
    core, rest = text[:cut], text[cut:]
    parts = [str(int(p)) if p.isdigit() else p for p in core.split(".")]
    parts += ["0"] * (3 - len(parts))
    return ".".join(parts) + rest


def _quantity(text: Any) -> Quantity:
    try:
        return Quantity(parse_quantity(str(text)), str(text))
    except QuantityError as error:
        raise ValueError(str(error)) from error


def _is_quantity(text: Any) -> celtypes.BoolType:
    try:
        parse_quantity(str(text))
    except QuantityError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _semver(text: Any, normalize: Any = False) -> Semver:
    raw = str(text)
    return Semver(_normalize_semver(raw) if bool(normalize) else raw)


def _is_semver(text: Any, normalize: Any = False) -> celtypes.BoolType:
    try:
        _semver(text, normalize)
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _same_kind(a: Any, b: Any) -> None:
    if not (isinstance(a, Quantity | Semver) and type(a) is type(b)):
        raise TypeError(f"no such overload: {a!r} compared with {b!r}")


def _compare_to(a: Any, b: Any) -> celtypes.IntType:
    _same_kind(a, b)
    return celtypes.IntType(-1 if a < b else 1 if a > b else 0)


def _greater(a: Any, b: Any) -> celtypes.BoolType:
    _same_kind(a, b)
    return celtypes.BoolType(a > b)


def _less(a: Any, b: Any) -> celtypes.BoolType:
    _same_kind(a, b)
    return celtypes.BoolType(a < b)


def _as_fraction(value: Any) -> Fraction:
    if isinstance(value, Quantity):
        return value.value
    if isinstance(value, int) and not isinstance(value, bool):
        return Fraction(value)
    raise TypeError(f"no such overload: {value!r} is not a quantity or an int")


def _add(a: Any, b: Any) -> Quantity:
    if not isinstance(a, Quantity):
        raise TypeError(f"no such overload: add on {a!r}")
    total = a.value + _as_fraction(b)
    return Quantity(total, str(total))


def _sub(a: Any, b: Any) -> Quantity:
    if not isinstance(a, Quantity):
        raise TypeError(f"no such overload: sub on {a!r}")
    total = a.value - _as_fraction(b)
    return Quantity(total, str(total))


def _quantity_only(method: Callable[[Quantity], Any]) -> Callable[[Any], Any]:
    def call(value: Any) -> Any:
        if not isinstance(value, Quantity):
            raise TypeError(f"no such overload: {method.__name__} on {value!r}")
        return method(value)

    return call


def _as_integer(q: Quantity) -> celtypes.IntType:
    if q.value.denominator != 1 or abs(q.value) >= 2**63:
        raise ValueError(f"cannot convert value to integer: {q.text}")
    return celtypes.IntType(int(q.value))


def _semver_part(index: int) -> Callable[[Any], celtypes.IntType]:
    def part(value: Any) -> celtypes.IntType:
        if not isinstance(value, Semver):
            raise TypeError(f"no such overload: {value!r} is not a semver")
        return celtypes.IntType(value.core[index])

    return part


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "semver": _semver,
    "isSemver": _is_semver,
    "compareTo": _compare_to,
    "isGreaterThan": _greater,
    "isLessThan": _less,
    "add": _add,
    "sub": _sub,
    "asInteger": _quantity_only(_as_integer),
    "isInteger": _quantity_only(lambda q: celtypes.BoolType(q.value.denominator == 1)),
    "asApproximateFloat": _quantity_only(lambda q: celtypes.DoubleType(float(q.value))),
    "sign": _quantity_only(lambda q: celtypes.IntType((q.value > 0) - (q.value < 0))),
    "major": _semver_part(0),
    "minor": _semver_part(1),
    "patch": _semver_part(2),
}


class _Domains(celtypes.MapType):
    """``device.attributes`` / ``device.capacity``: an unknown domain is an empty map."""

    def __missing__(self, key: Any) -> celtypes.MapType:
        return celtypes.MapType()


def attribute_value(value: Mapping[str, Any]) -> Any:
    """A ResourceSlice ``DeviceAttribute`` (``{"string": …}``, ``int``, ``bool``, ``version``)
    as a CEL value."""
    if "string" in value:
        return celtypes.StringType(value["string"])
    if "int" in value:
        return celtypes.IntType(int(value["int"]))
    if "bool" in value:
        return celtypes.BoolType(bool(value["bool"]))
    if "version" in value:
        return Semver(str(value["version"]))
    raise CelError(f"attribute {dict(value)!r} has none of string, int, bool, version")


def _qualified(name: str, driver: str) -> tuple[str, str]:
    domain, _, ident = name.rpartition("/")
    return (domain or driver), ident


def device_variable(
    driver: str,
    attributes: Mapping[str, Mapping[str, Any]],
    capacity: Mapping[str, Mapping[str, Any]],
    allow_multiple: bool = False,
) -> celtypes.MapType:
    """The ``device`` variable of a ResourceSlice device: attribute and capacity names without a
    domain belong to the driver's domain, as Kubernetes reads them."""
    attrs: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        domain, ident = _qualified(name, driver)
        attrs.setdefault(domain, {})[ident] = attribute_value(value)
    caps: dict[str, dict[str, Any]] = {}
    for name, value in capacity.items():
        domain, ident = _qualified(name, driver)
        text = str(value.get("value", "0"))
        caps.setdefault(domain, {})[ident] = _quantity(text)
    return celtypes.MapType(
        {
            celtypes.StringType("driver"): celtypes.StringType(driver),
            celtypes.StringType("attributes"): _Domains(
                {celtypes.StringType(d): celtypes.MapType(v) for d, v in attrs.items()}
            ),
            celtypes.StringType("capacity"): _Domains(
                {celtypes.StringType(d): celtypes.MapType(v) for d, v in caps.items()}
            ),
            celtypes.StringType("allowMultipleAllocations"): celtypes.BoolType(allow_multiple),
        }
    )


@functools.cache
def _env() -> celpy.Environment:
    """The CEL environment, built at the first compile (its parser takes ~0.15 s to build, paid
    otherwise by every process that imports the emulator)."""
    return celpy.Environment()


_MACROS = re.compile(r"\b(size|exists|exists_one|all|filter|map)\s*\(")
_LITERAL = re.compile(r"\s*('[^'\\]*'|\"[^\"\\]*\")\s*")
_WORDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRINGS = re.compile(r"'([^'\\]*)'|\"([^\"\\]*)\"")
_MEMO_LIMIT = 50_000


_LIT = r"""\s*(?:'[^'\\]*'|"[^"\\]*")\s*"""
_NARROW = re.compile(
    r"device\s*\.\s*(?:driver|allowMultipleAllocations)\b"
    r"|device\s*\.\s*(?:attributes|capacity)\s*\[" + _LIT + r"\]\s*"
    r"(?:\.\s*[A-Za-z_]\w*|\[" + _LIT + r"\])"
)
_MEMBERSHIP = re.compile(
    r"\bin\s+device\s*\.\s*(?:attributes|capacity)\s*(?:\[" + _LIT + r"\])?(?!\s*[.\[])"
)


def _narrow_uses(expression: str) -> bool:
    """Whether every use of ``device`` reads one named field or attribute (or asks whether a
    name is ``in`` a map): never a whole map, which could compare or count all its entries."""
    uses = len(re.findall(r"\bdevice\b", expression))
    narrow = len(_NARROW.findall(expression)) + len(_MEMBERSHIP.findall(expression))
    return uses == narrow


def references(expression: str) -> frozenset[str] | None:
    """The attribute and capacity names ``expression`` can read (every word and string
    literal in it), or None when it may read others: a macro or ``size()`` over a map, or an
    index that is not a string literal. Devices that agree on these names get one verdict."""
    if _MACROS.search(expression) or not _narrow_uses(expression):
        return None
    depth, start = 0, 0
    for i, ch in enumerate(expression):
        if ch == "[":
            before = expression[:i].rstrip()
            indexing = bool(before) and (before[-1].isalnum() or before[-1] in "_])'\"")
            if indexing and not re.search(r"\bin$", before):
                depth, start = depth + 1, i + 1
        elif ch == "]" and depth:
            if not _LITERAL.fullmatch(expression[start:i]):
                return None
            depth -= 1
    literals = [a or b for a, b in _STRINGS.findall(expression)]
    return frozenset(_WORDS.findall(expression)) | {t.rpartition("/")[2] for t in literals}


def _projection(
    names: frozenset[str] | None,
    driver: str,
    attributes: Mapping[str, Any],
    capacity: Mapping[str, Any],
) -> Any:
    def pick(kind: str, values: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        out = []
        for name, value in values.items():
            domain, ident = _qualified(name, driver)
            if names is None or ident in names:
                out.append((kind, f"{domain}/{ident}", repr(sorted(dict(value).items()))))
        return out

    domains = sorted({_qualified(n, driver)[0] for n in (*attributes, *capacity)})
    return (driver, tuple(domains), tuple(sorted(pick("a", attributes) + pick("c", capacity))))


@dataclass(frozen=True)
class Selector:
    """One compiled CEL selector expression, with its verdicts by what a device shows it."""

    expression: str
    program: Any
    names: frozenset[str] | None
    _memo: dict[Any, bool | CelError] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, device: celtypes.MapType) -> bool:
        """Whether ``device`` is selected; ``CelError`` for a runtime error or a non-bool."""
        try:
            result = self.program.evaluate({"device": device})
        except CELEvalError as error:
            raise CelError(f"CEL runtime error: {_reason(error)}") from error
        except (TypeError, ValueError, KeyError) as error:
            raise CelError(f"CEL runtime error: {error}") from error
        if not isinstance(result, celtypes.BoolType):
            raise CelError(f"CEL expression must return a bool, got {result!r}")
        return bool(result)

    def selects(
        self,
        driver: str,
        attributes: Mapping[str, Mapping[str, Any]],
        capacity: Mapping[str, Mapping[str, Any]],
    ) -> bool:
        """``matches`` for a ResourceSlice device, evaluated once per distinct view of the
        names the expression reads."""
        key = _projection(self.names, driver, attributes, capacity)
        verdict = self._memo.get(key)
        if verdict is None:
            try:
                verdict = self.matches(device_variable(driver, attributes, capacity))
            except CelError as error:
                verdict = error
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = verdict
        if isinstance(verdict, CelError):
            raise verdict
        return verdict


def _reason(error: CELEvalError) -> str:
    args = error.args
    inner = args[2] if len(args) > 2 else ()
    if isinstance(inner, tuple) and inner:
        first = inner[0]
        return str(first.args[0] if isinstance(first, Exception) and first.args else first)
    return str(args[0]) if args else str(error)


@functools.lru_cache(maxsize=4096)
def compile_selector(expression: str) -> Selector:
    """The compiled selector; ``CelError`` with the parser's message when it does not compile."""
    try:
        ast = _env().compile(expression)
    except CELParseError as error:
        first = str(error).splitlines()[0] if str(error) else "syntax error"
        raise CelError(f"compilation failed: {first}") from error
    return Selector(expression, _env().program(ast, functions=FUNCTIONS), references(expression))
