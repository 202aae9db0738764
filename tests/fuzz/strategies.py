"""Inputs for the fuzz tests: raw bytes, JSON values and near-valid files of each format."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["{{name}}", "{{ first name }}", "{{", "}}", "{{}}", "\ufeff", "\x00"]),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=12), inner, max_size=5),
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=6)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


raw_bytes = st.binary(max_size=2048)
