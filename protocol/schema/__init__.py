"""The verb schema: *.yml definitions, loader, validator, registry and generated help."""

from .docs import namespace_help, namespaces_help, verb_help
from .loader import SCHEMA_DIR, SchemaError, default_schema, load_schema
from .model import MISSING, ListOf, Param, Schema, Verb, python_name
from .registry import BoundVerb, SchemaMismatchError, VerbRegistry, verb
from .validator import ValidationError, Validator

__all__ = [
    "MISSING",
    "SCHEMA_DIR",
    "BoundVerb",
    "ListOf",
    "Param",
    "Schema",
    "SchemaError",
    "SchemaMismatchError",
    "ValidationError",
    "Validator",
    "Verb",
    "VerbRegistry",
    "default_schema",
    "load_schema",
    "namespace_help",
    "namespaces_help",
    "python_name",
    "verb",
    "verb_help",
]
