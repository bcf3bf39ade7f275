"""One exception type for every mistake a user can make, and the one-line checks that raise it.

The command line turns a :class:`MedkitError` into a one-line message and exit code 2; a
notebook shows the same message. Anything else that escapes is a bug in medkit.

Structured inputs (``dataset.json``, study files, a run folder's ``params.json``) are checked
against a JSON Schema (Draft 2020-12, the ``jsonschema`` library) by :func:`check_schema`, whose
message names the file, the field and the problem on one line.
"""
from __future__ import annotations

from typing import Any


class MedkitError(Exception):
    """A problem with the user's input (path, file, option or data), stated in one line."""


def one_line(text: object, limit: int = 300) -> str:
    """``text`` folded onto one line (whitespace runs become one space) and cut at ``limit``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _field(path) -> str:
    """A JSON path as ``training[3].image`` (empty for the document itself)."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def check_schema(obj: Any, schema: dict, where: str) -> Any:
    """Return ``obj`` if it matches the JSON Schema ``schema``; else raise one line
    ``<where>: <field>: <problem>``.

    A (sub)schema may carry ``"description"``, the rule in words; the message then reads
    ``<field>: must be <description>, got <value>`` rather than the validator's own wording.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(obj))
    if error is None:
        return obj
    field = _field(error.absolute_path) or "the document"
    rule = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator in ("required", "additionalProperties", "propertyNames"):
        rule = None  # the validator names the missing or unknown key itself
    problem = f"must be {rule}, got {one_line(repr(error.instance), 80)}" if rule else one_line(error.message, 160)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        problem = f"unknown key(s) {', '.join(map(repr, extra))}; known: {', '.join(known)}"
    raise MedkitError(f"{where}: {field}: {problem}")
