"""MLflow's search grammar: filter strings, order_by lists and page tokens, parsed without a database."""
import base64
import binascii
import json
import re
from dataclasses import dataclass

from gateway.exceptions import InvalidParameter

STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
LIST_OPS = ("IN", "NOT IN")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
TAG_OPS = STRING_OPS
ENTITY_TYPES = ("attribute", "tag", "tags")


@dataclass(frozen=True)
class Clause:
    """One `key comparator value` condition; kind is "attribute" or "tag"."""
    kind: str
    key: str
    comparator: str
    value: object


@dataclass(frozen=True)
class OrderBy:
    key: str
    ascending: bool


@dataclass(frozen=True)
class Grammar:
    """What one entity's search accepts."""
    attributes: dict        # attribute key -> allowed comparators
    numeric: frozenset      # attribute keys compared as integers
    order_keys: dict        # order_by key as written -> canonical key
    default_order: tuple    # OrderBy items used when order_by is empty
    tie_breaks: tuple       # OrderBy items appended when their key is absent


REGISTERED_MODELS = Grammar(
    attributes={"name": STRING_OPS + LIST_OPS},
    numeric=frozenset(),
    # MLflow's SQL store sorts on these; "timestamp" is an alias of last_updated_timestamp.
    order_keys={"name": "name", "timestamp": "last_updated_timestamp",
                "last_updated_timestamp": "last_updated_timestamp"},
    default_order=(OrderBy("name", True),),
    tie_breaks=(OrderBy("name", True),),
)

MODEL_VERSIONS = Grammar(
    attributes={"name": STRING_OPS + LIST_OPS, "run_id": STRING_OPS + LIST_OPS,
                "source_path": STRING_OPS, "version_number": NUMBER_OPS},
    numeric=frozenset({"version_number"}),
    order_keys={k: k for k in ("name", "version_number", "creation_timestamp",
                               "last_updated_timestamp")} | {"timestamp": "creation_timestamp"},
    default_order=(OrderBy("last_updated_timestamp", False), OrderBy("name", True),
                   OrderBy("version_number", False)),
    tie_breaks=(OrderBy("name", True), OrderBy("version_number", False)),
)

_TOKENS = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<quoted>`[^`]*`)
  | (?P<number>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
  | (?P<op>!=|<>|>=|<=|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][\w.\-:/]*)
""", re.VERBOSE)


def _tokenize(text):
    tokens, position = [], 0
    while position < len(text):
        match = _TOKENS.match(text, position)
        if not match:
            raise InvalidParameter(f"Invalid filter string '{text}': unexpected character "
                                   f"{text[position]!r} at position {position}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group(), match.start()))
        position = match.end()
    return tokens


class _Parser:
    """A recursive-descent reader over the tokens of one filter string."""

    def __init__(self, text, grammar):
        self.text, self.grammar = text, grammar
        self.tokens, self.index = _tokenize(text), 0

    def peek(self, offset=0):
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else (None, None, len(self.text))

    def take(self):
        token = self.peek()
        self.index += 1
        return token

    def fail(self, what):
        kind, text, position = self.peek()
        found = f"'{text}'" if kind else "the end of the filter"
        raise InvalidParameter(
            f"Invalid filter string '{self.text}': expected {what}, found {found} at position "
            f"{position}")

    def clauses(self):
        result = [self.clause()]
        while self.peek()[0] is not None:
            kind, text, _ = self.peek()
            if kind != "word" or text.upper() != "AND":
                raise InvalidParameter(f"Invalid clause(s) in filter string: {text}")
            self.take()
            result.append(self.clause())
        return result

    def clause(self):
        kind, key = self.identifier()
        comparator = self.comparator()
        value = self.value(kind, key, comparator)
        return Clause(kind, key, comparator, value)

    def identifier(self):
        kind, text, _ = self.peek()
        if kind == "quoted":  # `key` alone names an attribute
            self.take()
            return self.attribute(text[1:-1])
        if kind != "word" or text.upper() in ("AND", "OR", "NOT"):
            self.fail("an attribute or tag name")
        self.take()
        if "." not in text:
            return self.attribute(text)
        entity, _, key = text.partition(".")
        if not key:  # tags.`key` or tags."key"
            next_kind, next_text, _ = self.peek()
            if next_kind not in ("quoted", "string"):
                self.fail("a tag key after '.'")
            self.take()
            key = _unquote(next_text)
        if entity.lower() not in ENTITY_TYPES:
            raise InvalidParameter(f"Invalid entity type '{entity}'. "
                                   f"Valid entity types are {ENTITY_TYPES}")
        if entity.lower() == "attribute":
            return self.attribute(key)
        return "tag", key

    def attribute(self, key):
        if key not in self.grammar.attributes:
            raise InvalidParameter(f"Invalid attribute key '{key}' specified. "
                                   f"Valid keys are '{set(self.grammar.attributes)}'")
        return "attribute", key

    def comparator(self):
        kind, text, _ = self.take()
        if kind == "op":
            return {"<>": "!=", "==": "="}.get(text, text)
        word = (text or "").upper()
        if kind == "word" and word == "NOT" and (self.peek()[1] or "").upper() == "IN":
            self.take()
            return "NOT IN"
        if kind == "word" and word in ("LIKE", "ILIKE", "IN"):
            return word
        self.index -= 1
        self.fail("a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)")

    def value(self, kind, key, comparator):
        allowed = TAG_OPS if kind == "tag" else self.grammar.attributes[key]
        if comparator not in allowed:
            target = "tag" if kind == "tag" else f"attribute '{key}'"
            raise InvalidParameter(f"Invalid comparator '{comparator}' for {target}. "
                                   f"Valid comparators are {list(allowed)}")
        if comparator in LIST_OPS:
            return self.string_list()
        if kind == "attribute" and key in self.grammar.numeric:
            return self.integer(key)
        token_kind, text, _ = self.peek()
        if token_kind != "string":
            self.fail(f"a quoted string value for {kind} '{key}' (e.g. 'my-value')")
        self.take()
        return _unquote(text)

    def integer(self, key):
        kind, text, _ = self.take()
        raw = _unquote(text) if kind == "string" else text
        if kind in ("string", "number") and re.fullmatch(r"[-+]?\d+", raw or ""):
            return int(raw)
        self.index -= 1
        self.fail(f"an integer value for '{key}'")

    def string_list(self):
        if self.take()[0] != "lparen":
            self.index -= 1
            self.fail("a parenthesised list of quoted strings, e.g. ('a', 'b')")
        values = []
        while True:
            kind, text, _ = self.take()
            if kind != "string":
                self.index -= 1
                self.fail("a quoted string in the IN list")
            values.append(_unquote(text))
            kind = self.take()[0]
            if kind == "rparen":
                return tuple(values)
            if kind != "comma":
                self.index -= 1
                self.fail("',' or ')' in the IN list")


def _unquote(text):
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote) if quote in "'\"" else text[1:-1]


def parse_filter(text, grammar):
    """Parse an AND-only MLflow filter string into clauses (an empty filter gives none)."""
    if not text or not text.strip():
        return []
    return _Parser(text, grammar).clauses()


def parse_order_by(items, grammar):
    """Parse order_by items ("key [ASC|DESC]") and append the entity's tie-breaks."""
    if not items:
        return list(grammar.default_order)
    order = [_order_item(item, grammar) for item in items]
    keys = [item.key for item in order]
    if len(set(keys)) != len(keys):
        raise InvalidParameter(f"`order_by` contains duplicate fields: {list(items)}")
    return order + [tie for tie in grammar.tie_breaks if tie.key not in keys]


def _order_item(item, grammar):
    parts = item.split()
    key = parts[0].removeprefix("attribute.") if parts else ""
    direction = parts[1].upper() if len(parts) == 2 else "ASC"
    if len(parts) not in (1, 2) or direction not in ("ASC", "DESC"):
        raise InvalidParameter(f"Invalid order_by clause '{item}'. Expected '<key> [ASC|DESC]'.")
    if key not in grammar.order_keys:
        raise InvalidParameter(f"Invalid order by key '{key}' specified. Valid keys are "
                               f"'{sorted(grammar.order_keys)}'")
    return OrderBy(grammar.order_keys[key], direction == "ASC")


def make_page_token(offset):
    """MLflow's page token: base64 of {"offset": N}."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


# No page is that far: past it, an offset is a forged token (and overflows SQL's integers).
MAX_OFFSET = 10**9


def parse_page_token(token):
    """The offset a page token stands for (0 without a token)."""
    if not token:
        return 0
    try:
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter("Invalid page token, could not base64-decode") from None
    try:
        parsed = json.loads(decoded)
    except ValueError:
        raise InvalidParameter(f"Invalid page token, decoded value={decoded}") from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    if (not isinstance(offset, int) or isinstance(offset, bool) or offset <= 0
            or offset > MAX_OFFSET):
        raise InvalidParameter(f"Invalid page token, parsed value={parsed}")
    return offset
