"""Turn parsed search clauses and orderings into Peewee expressions."""
from peewee import SQL, NodeList, fn

from gateway.db import prepared
from gateway.exceptions import InvalidParameter
from gateway.search import Clause
from gateway.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag

PROMPT_TAG = "mlflow.prompt.is_prompt"


def compare(column, comparator, value):
    """`column <comparator> value` with MLflow's meaning (LIKE is case-sensitive)."""
    if comparator == "LIKE":
        # Spelled out: peewee's own LIKE operator becomes GLOB on SQLite.
        return NodeList((column, SQL("LIKE"), value))
    if comparator == "ILIKE":
        return NodeList((fn.LOWER(column), SQL("LIKE"), fn.LOWER(value)))
    if comparator == "IN":
        return column.in_(list(value))
    if comparator == "NOT IN":
        return column.not_in(list(value))
    operators = {"=": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__",
                 ">": "__gt__", ">=": "__ge__"}
    return getattr(column, operators[comparator])(value)


def wants_prompts(clauses):
    """MLflow's rule: only `= 'true'` or `!= 'false'` on the prompt tag asks for prompts."""
    for clause in clauses:
        if clause.kind == "tag" and clause.key == PROMPT_TAG:
            value = str(clause.value).lower()
            return (clause.comparator, value) in (("=", "true"), ("!=", "false"))
    return False


def effective(clauses):
    """(clauses that become conditions, whether prompts are wanted).

    Unless the filter asks for prompts, a clause on the prompt tag only means "leave prompts
    out", which the conditions do with an anti-join instead.
    """
    prompts = wants_prompts(clauses)
    return [c for c in clauses if prompts or not (c.kind == "tag" and c.key == PROMPT_TAG)], prompts


def _tag_exists(tag_model, owner_column, owner_id, clause):
    rows = tag_model.select(SQL("1")).where(
        owner_column == owner_id, tag_model.key == clause.key,
        compare(tag_model.value, clause.comparator, clause.value))
    return fn.EXISTS(rows)


def registered_model_conditions(clauses, prompts=None):
    """WHERE conditions of a registered-model search (prompts excluded unless asked for)."""
    prompts = wants_prompts(clauses) if prompts is None else prompts
    conditions = []
    for clause in clauses:
        if clause.kind == "attribute":
            conditions.append(compare(RegisteredModel.name, clause.comparator, clause.value))
        elif clause.key != PROMPT_TAG or prompts:
            conditions.append(_tag_exists(RegisteredModelTag, RegisteredModelTag.registered_model,
                                          RegisteredModel.id, clause))
    if not prompts:
        prompt_rows = RegisteredModelTag.select(SQL("1")).where(
            RegisteredModelTag.registered_model == RegisteredModel.id,
            RegisteredModelTag.key == PROMPT_TAG, RegisteredModelTag.value == "true")
        conditions.append(~fn.EXISTS(prompt_rows))
    return conditions


_VERSION_ATTRIBUTES = {"name": RegisteredModel.name, "run_id": ModelVersion.run_id,
                       "source_path": ModelVersion.source, "version_number": ModelVersion.version}


def model_version_conditions(clauses, prompts=None):
    """WHERE conditions of a model-version search (versions must be joined to their model)."""
    prompts = wants_prompts(clauses) if prompts is None else prompts
    conditions = []
    for clause in clauses:
        if clause.kind == "attribute":
            column = _VERSION_ATTRIBUTES[clause.key]
            conditions.append(compare(column, clause.comparator, clause.value))
        elif clause.key != PROMPT_TAG or prompts:
            conditions.append(_tag_exists(ModelVersionTag, ModelVersionTag.model_version,
                                          ModelVersion.id, clause))
    if not prompts:
        # As MLflow: a model any of whose versions is a prompt version is a prompt.
        tagged = ModelVersion.alias("tagged")
        prompt_rows = (ModelVersionTag.select(SQL("1"))
                       .join(tagged, on=(ModelVersionTag.model_version == tagged.id))
                       .where(tagged.registered_model == ModelVersion.registered_model,
                              ModelVersionTag.key == PROMPT_TAG, ModelVersionTag.value == "true"))
        conditions.append(~fn.EXISTS(prompt_rows))
    return conditions


_ORDER_COLUMNS = {
    "registered_model": {"name": RegisteredModel.name,
                         "last_updated_timestamp": RegisteredModel.last_updated_timestamp},
    "model_version": {"name": RegisteredModel.name, "version_number": ModelVersion.version,
                      "creation_timestamp": ModelVersion.creation_timestamp,
                      "last_updated_timestamp": ModelVersion.last_updated_timestamp},
}


def ordering(order, entity):
    """Peewee ORDER BY terms for parsed OrderBy items of entity."""
    columns = _ORDER_COLUMNS[entity]
    return [columns[item.key].asc() if item.ascending else columns[item.key].desc()
            for item in order]


def check_max_results(max_results, limit):
    """Refuse a page size outside 1..limit."""
    if max_results < 1:
        raise InvalidParameter("Invalid value for max_results. It must be a positive integer, "
                               f"but got {max_results}")
    if max_results > limit:
        raise InvalidParameter("Invalid value for request parameter max_results. It must be at "
                               f"most {limit}, but got value {max_results}")


class SearchQueries:
    """Search queries compiled once per shape: the filter's structure and order, not its values.

    `build(workspace, limit, offset, clauses, prompts, order)` returns the Peewee query; the
    clauses it gets hold markers where the caller's values go.
    """

    def __init__(self, build, limit=256, rows=None):
        self.build, self.limit, self.rows, self.by_shape = build, limit, rows, {}

    def __call__(self, workspace, clauses, order, limit, offset):
        clauses, prompts = effective(clauses)
        shape = (tuple((c.kind, c.key, c.comparator,
                        len(c.value) if isinstance(c.value, tuple) else None) for c in clauses),
                 tuple(order), prompts)
        query = self.by_shape.get(shape)
        if query is None:
            if len(self.by_shape) >= self.limit:
                self.by_shape.clear()
            query = self.by_shape[shape] = prepared(
                lambda workspace, limit, offset, *markers: self.build(
                    workspace, limit, offset, _with_markers(shape[0], markers), shape[2],
                    list(shape[1])), rows=self.rows)
        values = [v for c in clauses for v in (c.value if isinstance(c.value, tuple)
                                               else (c.value,))]
        return query(workspace, limit, offset, *values)


def _with_markers(structure, markers):
    markers, clauses = list(markers), []
    for kind, key, comparator, count in structure:
        if count is None:
            clauses.append(Clause(kind, key, comparator, markers.pop(0)))
        else:
            clauses.append(Clause(kind, key, comparator, tuple(markers[:count])))
            del markers[:count]
    return clauses
