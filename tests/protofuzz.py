"""Hypothesis strategies for arbitrary protobuf messages of a given type, built from descriptors.

Every field may be set to any value its type admits: huge and negative numbers, unknown enum
values, Durations and Timestamps out of range, any text (biased toward `names` so that requests
also reach past the first lookup), nested messages, lists and maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_INTS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_EDGES = [0, 1, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 10**12, 999_999_999, 1_000_000_000]


def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([e for e in _EDGES if lo <= e <= hi]), st.integers(lo, hi))


def _texts(names: Sequence[str]) -> st.SearchStrategy[str]:
    odd = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # protobuf strings are UTF-8
    return st.one_of(odd, st.sampled_from(list(names) or [""]))


def _field_values(field: FieldDescriptor, names: Sequence[str], depth: int) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INTS:
        return _ints(*_INTS[kind])
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=64 if kind == FieldDescriptor.TYPE_DOUBLE else 32)
    if kind == FieldDescriptor.TYPE_STRING:
        return _texts(names)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), _ints(-(2**31), 2**31 - 1))  # open enums take any value
    return messages(field.message_type, names=names, depth=depth + 1)


def messages(descriptor: Descriptor | type[Message], *, names: Sequence[str] = (), depth: int = 0) -> Any:
    """A strategy of messages of `descriptor` (a descriptor or a generated message class)."""
    if isinstance(descriptor, type):
        descriptor = descriptor.DESCRIPTOR
    cls = _message_class(descriptor)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        for field in descriptor.fields:
            if depth > 3 or not draw(st.booleans()):
                continue
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                entry = field.message_type.fields_by_name
                key_field, value_field = entry["key"], entry["value"]
                entries = draw(
                    st.dictionaries(
                        _field_values(key_field, names, depth), _field_values(value_field, names, depth), max_size=3
                    )
                )
                target = getattr(message, field.name)
                for k, v in entries.items():
                    if value_field.message_type is not None:
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif field.is_repeated:
                values = draw(st.lists(_field_values(field, names, depth), max_size=3))
                target = getattr(message, field.name)
                for v in values:
                    if field.message_type is not None:
                        target.add().CopyFrom(v)
                    else:
                        target.append(v)
            elif field.message_type is not None:
                getattr(message, field.name).CopyFrom(draw(_field_values(field, names, depth)))
            else:
                setattr(message, field.name, draw(_field_values(field, names, depth)))
        return message

    return build()


def _message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)
