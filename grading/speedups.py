"""nbgrader's repeated per-call costs, paid once per grading process instead (:func:`install`).

- **SQL statements compiled once.** nbgrader opens the gradebook (a new SQLAlchemy engine) in
  each of its steps, and each new engine compiled every statement again: its cache of compiled
  statements belongs to the engine and is keyed by the engine's dialect object. Engines that
  ``nbgrader.api`` makes here share one dialect per kind of database and one cache (about
  0.1 CPU-s a job). Statements, parameters and connections are the engine's own as before.
- **Metadata schemas checked once.** nbgrader checks each cell's ``nbgrader`` metadata with
  ``jsonschema.validate``, which first checks the schema itself against its meta-schema, on every
  call. Here one validator per schema checks the cells, and raises what ``jsonschema.validate``
  raises (its best match of the errors).
"""

from __future__ import annotations

import json
import types
from typing import Any

SHARED_CACHE_SIZE = 2000


def _shared_engines(create_engine):
    """``create_engine`` whose engines share a dialect per database kind and a compiled-statement cache."""
    from sqlalchemy.util import LRUCache

    dialects: dict[tuple[str, str], Any] = {}
    cache = LRUCache(SHARED_CACHE_SIZE)

    def create(url, **kwargs):
        engine = create_engine(url, **kwargs)
        engine.dialect = dialects.setdefault((engine.dialect.name, engine.dialect.driver), engine.dialect)
        engine._compiled_cache = cache
        return engine

    return create


def _cached_validation():
    """A stand-in for the ``jsonschema`` module in nbgrader's metadata check: one validator per schema."""
    import jsonschema

    validators: dict[str, Any] = {}

    def validate(instance, schema) -> None:
        key = json.dumps(schema, sort_keys=True)
        validator = validators.get(key)
        if validator is None:
            kind = jsonschema.validators.validator_for(schema)
            kind.check_schema(schema)
            validator = validators[key] = kind(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error

    return types.SimpleNamespace(validate=validate, ValidationError=jsonschema.ValidationError)


def install() -> None:
    """Apply both to nbgrader in this process (a grading process, which grades job after job; the run,
    which merges submission after submission)."""
    import nbgrader.api
    import nbgrader.nbgraderformat.common as metadata

    if not getattr(nbgrader.api, "_shared_engines", False):
        nbgrader.api.create_engine = _shared_engines(nbgrader.api.create_engine)
        nbgrader.api._shared_engines = True
    metadata.jsonschema = _cached_validation()
