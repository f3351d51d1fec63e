"""Which fields a document may hold where, read from the pydantic models themselves.

A load error's location (``spec.rules.requireLimts``) is walked through the document's model
to the model(s) found at its parent, whose input names (a field's alias where it has one) are
the names accepted there. :func:`unknown_field_hint` turns that into the ``did you mean`` of an
unknown field. Walking from the models, not from a list kept by hand, keeps every field added
later covered.

Some fields accept more than their annotation says (a before-validator reads the input first):
:data:`INLINE_POLICY_VALIDATORS` are those whose input is really a policy document (an inline
policy of a PolicyTest suite), so a typo inside one is found in the policy models.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator

from webhook.policy import schema, suite
from webhook.policy.spelling import closest_name, did_you_mean

# the document models a validation error can start from, by the name pydantic gives it (ValidationError.title)
ROOT_MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m for m in (schema.ClusterPolicyDoc, schema.TenantPolicyDoc, suite.PolicyTestDoc)}
INLINE_POLICIES: tuple[type[BaseModel], ...] = (schema.TenantPolicyDoc, schema.ClusterPolicyDoc)
INLINE_POLICY_VALIDATORS: frozenset[Callable[..., Any]] = frozenset({suite._path_or_policy})

# parts pydantic inserts into a location that are no field: a union member's tag, a validator's name
TYPE_TAG = re.compile(r"^(function-|literal\[|list\[|dict\[|union\[|nullable\[|tagged-union\[)|^\w+\[")


def input_names(model: type[BaseModel]) -> list[str]:
    """The keys ``model`` accepts: each field's alias where it has one (``from``), else its name."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _is_tag(part: str | int, members: Sequence[Any] = ()) -> bool:
    if not isinstance(part, str):
        return False
    return bool(TYPE_TAG.match(part)) or part == "[key]" or any(getattr(m, "__name__", None) == part
                                                                 for m in members)


def _dedupe(models: list[type[BaseModel]]) -> list[type[BaseModel]]:
    return list(dict.fromkeys(models))


def models_at(tp: Any, loc: Sequence[str | int], metadata: Sequence[Any] = ()) -> list[type[BaseModel]]:
    """The models found at ``loc`` below type ``tp`` (several where a union allows several); empty when the
    location leads into something that is not a model (a free-form map, a string)."""
    for meta in metadata:
        if isinstance(meta, BeforeValidator) and meta.func in INLINE_POLICY_VALIDATORS:
            return _dedupe([m for doc in INLINE_POLICIES for m in models_at(doc, loc)])
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return models_at(args[0], loc, list(metadata) + list(tp.__metadata__))
    if origin is Union or origin is types.UnionType:
        if loc and _is_tag(loc[0], args):
            named = [a for a in args if getattr(a, "__name__", None) == loc[0]]
            return _dedupe([m for a in named or args for m in models_at(a, loc[1:])])
        return _dedupe([m for a in args for m in models_at(a, loc)])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if not loc:
            return [tp]
        part, rest = loc[0], loc[1:]
        for name, info in tp.model_fields.items():
            if part == (info.alias or name):
                return models_at(info.annotation, rest, info.metadata)
        return models_at(tp, rest) if _is_tag(part) else []
    if not loc:
        return []
    part, rest = loc[0], loc[1:]
    if _is_tag(part):
        return models_at(tp, rest)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return models_at(args[0], rest)
    if origin in (dict, Mapping) and len(args) == 2:
        return models_at(args[1], rest)
    return []


def names_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys accepted at ``loc`` (the location of a mapping) of a ``root`` document."""
    return list(dict.fromkeys(n for m in models_at(root, loc) for n in input_names(m)))


def unknown_field_hint(title: str, error: Mapping[str, Any]) -> str:
    """`` (did you mean defaults?)`` for an ``extra_forbidden`` error of a document model whose
    ValidationError is titled ``title``; empty when it is another error or nothing is close."""
    if error.get("type") != "extra_forbidden":
        return ""
    root = ROOT_MODELS.get(title)
    loc = tuple(error.get("loc", ()))
    if root is None or not loc or not isinstance(loc[-1], str):
        return ""
    best = closest_name(loc[-1], names_at(root, loc[:-1]))
    return did_you_mean([best] if best else [])
