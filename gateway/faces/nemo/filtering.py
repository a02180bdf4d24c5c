"""NeMo's three filter syntaxes, read into its JSON form (which services.entity_filters runs).

- JSON: ?filter={"name": {"$like": "llama"}, "$or": [...]}
- Bracket: ?filter[name][$like]=llama&filter[base_model][name][$eq]=x (what the SDK sends for
  typed filters; lists as "a,b")
- Text: ?filter=name~"llama" AND (project:"a" OR -adapters:true) with : ~ > >= < <= IN, NOT IN,
  a "-" or NOT prefix, AND, OR, parentheses, and a space meaning AND; dotted fields
  (base_model.name) reach nested filters.
Several forms in one query are ANDed.
"""
import json
import re

from flask import request

from gateway.exceptions import InvalidFilter

_BRACKET = re.compile(r"filter((?:\[[^\[\]]*\])+)")
_TEXT_OPS = {":": "$eq", "~": "$like", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<op>>=|<=|[:~<>])
    | (?P<punct>[()\[\],])
    | (?P<word>[^\s:~<>()\[\],"]+)
    )""", re.VERBOSE)


def from_request():
    """The request's filter (every form given, ANDed), or {}."""
    parts = []
    text = request.args.get("filter")
    if text is not None and text.strip():
        parts.append(_json(text) if text.lstrip().startswith("{") else parse_text(text))
    bracket = _brackets(request.args.items(multi=True))
    if bracket:
        parts.append(bracket)
    if len(parts) > 1:
        return {"$and": parts}
    return parts[0] if parts else {}


def _json(text):
    try:
        tree = json.loads(text)
    except ValueError:
        raise InvalidFilter(f"Invalid JSON in filter parameter: {text}") from None
    if not isinstance(tree, dict):
        raise InvalidFilter("The filter must be a JSON object.")
    return tree


def _brackets(items):
    tree = {}
    for key, value in items:
        match = _BRACKET.fullmatch(key)
        if not match:
            if key.startswith("filter["):
                raise InvalidFilter(f"Malformed filter parameter '{key}'.")
            continue
        path = match.group(1)[1:-1].split("][")
        if "" in path:
            raise InvalidFilter(f"Malformed filter parameter '{key}'.")
        node = tree
        for step in path[:-1]:
            node = node.setdefault(step, {})
            if not isinstance(node, dict):
                raise InvalidFilter(f"Conflicting filter values for '{key}'.")
        if path[-1] in node:
            raise InvalidFilter(f"Filter parameter '{key}' is given twice (lists are a,b).")
        node[path[-1]] = value
    return tree


def parse_text(text):
    """NeMo's text syntax as its JSON form."""
    parser = _TextParser(_tokens(text))
    tree = parser.expression()
    if parser.peek() is not None:
        raise InvalidFilter(f"Unexpected '{parser.peek()[1]}' in filter.")
    return tree


def _tokens(text):
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise InvalidFilter(f"Cannot read the filter at: {text[position:][:40]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _TextParser:
    """expression := and (OR and)*; and := unary (AND? unary)*;
    unary := (- | NOT) unary | ( expression ) | field op value | field [NOT] IN [values]"""

    def __init__(self, tokens):
        self.tokens, self.at = tokens, 0

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self):
        token = self.peek()
        if token is None:
            raise InvalidFilter("The filter ends too early.")
        self.at += 1
        return token

    def keyword(self, *words):
        token = self.peek()
        return token is not None and token[0] == "word" and token[1] in words

    def expression(self):
        terms = [self.conjunction()]
        while self.keyword("OR"):
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else {"$or": terms}

    def conjunction(self):
        terms = [self.unary()]
        while self.peek() is not None and self.peek() != ("punct", ")") and not self.keyword(
                "OR"):
            if self.keyword("AND"):
                self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else {"$and": terms}

    def unary(self):
        kind, value = self.take()
        if kind == "word" and value == "NOT":
            return {"$not": self.unary()}
        if kind == "word" and value.startswith("-") and len(value) > 1:
            self.at -= 1
            self.tokens[self.at] = ("word", value[1:])  # -field:value
            return {"$not": self.unary()}
        if (kind, value) == ("punct", "("):
            tree = self.expression()
            if self.take() != ("punct", ")"):
                raise InvalidFilter("A '(' in the filter is not closed.")
            return tree
        if kind != "word" or value in ("AND", "OR"):
            raise InvalidFilter(f"Expected a field name in the filter, not '{value}'.")
        return _nest(value, self.condition(value))

    def condition(self, field):
        kind, value = self.take()
        if kind == "op":
            return {_TEXT_OPS[value]: self.value()}
        if (kind, value) == ("word", "IN"):
            return {"$in": self.values()}
        if (kind, value) == ("word", "NOT") and self.keyword("IN"):
            self.take()
            return {"$nin": self.values()}
        raise InvalidFilter(f"Expected an operator after '{field}' in the filter, not '{value}'.")

    def value(self):
        kind, value = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", value[1:-1])
        if kind == "word" and value in ("true", "false"):
            return value == "true"
        raise InvalidFilter(f"String values in a filter must be double-quoted: {value}")

    def values(self):
        if self.take() != ("punct", "["):
            raise InvalidFilter("IN needs a list: IN [\"a\", \"b\"].")
        items = [self.value()]
        while self.peek() == ("punct", ","):
            self.take()
            items.append(self.value())
        if self.take() != ("punct", "]"):
            raise InvalidFilter("A '[' in the filter is not closed.")
        return items


def _nest(field, condition):
    """base_model.name + {"$like": x} -> {"base_model": {"name": {"$like": x}}}."""
    for step in reversed(field.split(".")):
        if not step:
            raise InvalidFilter(f"Invalid field name '{field}' in the filter.")
        condition = {step: condition}
    return condition
