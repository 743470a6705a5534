"""Column types of JSON documents: JSONB on both databases, Python values in and out.

On SQLite a document is stored as SQLite's binary JSONB (SQLite >= 3.45), which makes
``json_extract`` in filters several times cheaper than on text; on PostgreSQL it is ``jsonb``.
Values go through ``runbase.documents``: NaN (and on PostgreSQL +/-Infinity, which SQLite's
JSON reads as ``9e999``) is stored tagged and read back as a float; on PostgreSQL, so is a
string holding U+0000.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Dialect, LargeBinary, cast, func, type_coerce
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.types import Text, TypeDecorator, UserDefinedType

from runbase import documents


class RawJSONB(UserDefinedType[str]):
    """PostgreSQL ``jsonb`` that passes JSON text through untouched (we encode it ourselves)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSONB"


class RawJSONBBlob(UserDefinedType[str]):
    """SQLite JSONB blob; values pass through as JSON text, converted by SQL functions."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BLOB"


class _Document(TypeDecorator[Any]):
    impl: TypeEngine[Any] | type[TypeEngine[Any]] = LargeBinary
    cache_ok = True
    tag_infinity = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else documents.encode(value, self.tag_infinity)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, (bytes, str)):
            return documents.decode(value)
        return documents.untag(value)


class SqliteDocument(_Document):
    impl = RawJSONBBlob
    cache_ok = True
    tag_infinity = False

    def bind_expression(self, bindvalue: Any) -> ColumnElement[Any]:
        return func.jsonb(bindvalue, type_=self)

    def column_expression(self, column: Any) -> ColumnElement[Any]:
        return func.json(column, type_=self)


class PostgresDocument(_Document):
    impl = RawJSONB
    cache_ok = True
    tag_infinity = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        text = super().process_bind_param(value, dialect)
        if text is not None and "\\u0000" in text:  # jsonb holds no U+0000: tag its strings
            text = documents.encode(documents.tag_nul(value), self.tag_infinity)
        return text

    def bind_expression(self, bindvalue: Any) -> ColumnElement[Any]:
        return cast(bindvalue, RawJSONB())

    def column_expression(self, column: Any) -> ColumnElement[Any]:
        return type_coerce(cast(column, Text), self)


JSONDoc = SqliteDocument().with_variant(PostgresDocument(), "postgresql")
"""The type of a document column."""
