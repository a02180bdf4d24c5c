"""The MLflow filter, order_by and page-token grammar, without a database."""
import pytest

from gateway.exceptions import InvalidParameter
from gateway.search import (MODEL_VERSIONS, REGISTERED_MODELS, Clause, OrderBy, make_page_token,
                            parse_filter, parse_order_by, parse_page_token)

RM, MV = REGISTERED_MODELS, MODEL_VERSIONS


@pytest.mark.parametrize("text, grammar, expected", [
    ("", RM, []),
    ("   ", RM, []),
    ("name = 'a'", RM, [Clause("attribute", "name", "=", "a")]),
    ('name="a b"', RM, [Clause("attribute", "name", "=", "a b")]),
    ("name != 'a'", RM, [Clause("attribute", "name", "!=", "a")]),
    ("name LIKE 'a%'", RM, [Clause("attribute", "name", "LIKE", "a%")]),
    ("name ilike '%A%'", RM, [Clause("attribute", "name", "ILIKE", "%A%")]),
    ("attribute.name = 'x'", RM, [Clause("attribute", "name", "=", "x")]),
    ("`name` = 'x'", RM, [Clause("attribute", "name", "=", "x")]),
    ("name IN ('a', 'b')", RM, [Clause("attribute", "name", "IN", ("a", "b"))]),
    ("name not in ('a')", RM, [Clause("attribute", "name", "NOT IN", ("a",))]),
    ("name = 'it''s'", RM, [Clause("attribute", "name", "=", "it's")]),
    ("tags.k = 'v'", RM, [Clause("tag", "k", "=", "v")]),
    ("tag.k = 'v'", RM, [Clause("tag", "k", "=", "v")]),
    ("tags.my.key = 'v'", RM, [Clause("tag", "my.key", "=", "v")]),
    ("tags.`my key` = 'v'", RM, [Clause("tag", "my key", "=", "v")]),
    ('tags."my key" != \'v\'', RM, [Clause("tag", "my key", "!=", "v")]),
    # The filter MlflowClient appends to every registered-model search.
    ("name LIKE 'm%' AND tag.`mlflow.prompt.is_prompt` != 'true'", RM,
     [Clause("attribute", "name", "LIKE", "m%"),
      Clause("tag", "mlflow.prompt.is_prompt", "!=", "true")]),
    ("name='a' and tags.x='1' AND tags.y LIKE '2%'", RM,
     [Clause("attribute", "name", "=", "a"), Clause("tag", "x", "=", "1"),
      Clause("tag", "y", "LIKE", "2%")]),
    ("version_number >= 3", MV, [Clause("attribute", "version_number", ">=", 3)]),
    ("version_number = '7'", MV, [Clause("attribute", "version_number", "=", 7)]),
    ("version_number<>2", MV, [Clause("attribute", "version_number", "!=", 2)]),
    ("run_id IN ('r1','r2')", MV, [Clause("attribute", "run_id", "IN", ("r1", "r2"))]),
    ("source_path LIKE 's3://%'", MV, [Clause("attribute", "source_path", "LIKE", "s3://%")]),
])
def test_parse_filter(text, grammar, expected):
    assert parse_filter(text, grammar) == expected


@pytest.mark.parametrize("text, grammar, message", [
    ("name = 'a' OR name = 'b'", RM, "Invalid clause(s) in filter string: OR"),
    ("foo = 'a'", RM, "Invalid attribute key 'foo' specified"),
    ("run_id = 'a'", RM, "Invalid attribute key 'run_id' specified"),
    ("params.x = 'a'", RM, "Invalid entity type 'params'"),
    ("name > 'a'", RM, "Invalid comparator '>' for attribute 'name'"),
    ("tags.k IN ('a')", RM, "Invalid comparator 'IN' for tag"),
    ("source_path IN ('a')", MV, "Invalid comparator 'IN' for attribute 'source_path'"),
    ("name = a", RM, "expected a quoted string value"),
    ("name = 5", RM, "expected a quoted string value"),
    ("name IN ()", RM, "expected a quoted string in the IN list"),
    ("name IN ('a', 1)", RM, "expected a quoted string in the IN list"),
    ("name IN 'a'", RM, "parenthesised list"),
    ("name", RM, "expected a comparator"),
    ("name =", RM, "found the end of the filter"),
    ("name = 'a' AND", RM, "expected an attribute or tag name"),
    ("(name = 'a')", RM, "expected an attribute or tag name"),
    ("name IS NULL", RM, "expected a comparator"),
    ("name = 'a' name = 'b'", RM, "Invalid clause(s) in filter string: name"),
    ("version_number > 1.5", MV, "expected an integer value"),
    ("version_number LIKE '1'", MV, "Invalid comparator 'LIKE'"),
    ("name = 'a' ; drop table x", RM, "unexpected character ';'"),
    ("name = 'unterminated", RM, "unexpected character"),
])
def test_parse_filter_rejects(text, grammar, message):
    with pytest.raises(InvalidParameter) as error:
        parse_filter(text, grammar)
    assert message in error.value.message


def test_order_by_defaults_and_tie_breaks():
    assert parse_order_by([], RM) == [OrderBy("name", True)]
    assert parse_order_by([], MV) == [OrderBy("last_updated_timestamp", False),
                                      OrderBy("name", True), OrderBy("version_number", False)]
    assert parse_order_by(["timestamp desc"], RM) == [
        OrderBy("last_updated_timestamp", False), OrderBy("name", True)]
    assert parse_order_by(["name DESC"], RM) == [OrderBy("name", False)]
    assert parse_order_by(["version_number ASC"], MV) == [
        OrderBy("version_number", True), OrderBy("name", True)]
    assert parse_order_by(["attribute.creation_timestamp"], MV)[0] == OrderBy(
        "creation_timestamp", True)


@pytest.mark.parametrize("items, grammar, message", [
    (["creation_timestamp"], RM, "Invalid order by key 'creation_timestamp'"),
    (["bogus"], MV, "Invalid order by key 'bogus'"),
    (["name sideways"], RM, "Expected '<key> [ASC|DESC]'"),
    (["name ASC extra"], RM, "Expected '<key> [ASC|DESC]'"),
    ([""], RM, "Invalid order_by clause ''"),
    (["name", "name DESC"], RM, "duplicate fields"),
])
def test_order_by_rejects(items, grammar, message):
    with pytest.raises(InvalidParameter) as error:
        parse_order_by(items, grammar)
    assert message in error.value.message


def test_page_token_round_trip_matches_mlflow():
    # MLflow's own encoding of offset 100.
    assert make_page_token(100) == "eyJvZmZzZXQiOiAxMDB9"
    assert parse_page_token("eyJvZmZzZXQiOiAxMDB9") == 100
    assert parse_page_token(None) == 0
    assert parse_page_token("") == 0


@pytest.mark.parametrize("token, message", [
    ("not base64!", "could not base64-decode"),
    ("bm90IGpzb24=", "decoded value"),                # "not json"
    ("eyJvZmZzZXQiOiAwfQ==", "parsed value"),        # {"offset": 0}
    ("eyJvZmZzZXQiOiAiMTAifQ==", "parsed value"),    # {"offset": "10"}
    ("WzFd", "parsed value"),                        # [1]
])
def test_page_token_rejects(token, message):
    with pytest.raises(InvalidParameter) as error:
        parse_page_token(token)
    assert message in error.value.message
