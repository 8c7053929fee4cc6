"""The CLI's JSON form: every document prints as strict JSON and reads back equal."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taiinet.cli import jsonform
from taiinet.node.errors import InvalidInput
from taiinet.pubsub.query import document_to_value, value_to_document

TAGGY_KEYS = st.sampled_from(["$bytes", "$float", "$$bytes", "$$$float", "bytes", "$x", "a"])
KEYS = st.one_of(TAGGY_KEYS, st.text(max_size=6))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=12))
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=12)


def strict_loads(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"non-JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@given(DOCUMENTS)
def test_every_document_prints_as_strict_json_and_reads_back_equal(document: Any) -> None:
    text = jsonform.dumps(document)
    assert "\n" not in text
    back = jsonform.from_json(strict_loads(text))
    assert back == document
    assert jsonform.loads(text, "line") == document


@given(DOCUMENTS)
def test_a_document_off_the_wire_prints(document: Any) -> None:
    # What a subscriber receives is what the value codec decodes.
    received = value_to_document(document_to_value(document))
    assert jsonform.from_json(strict_loads(jsonform.dumps(received))) == received


@pytest.mark.parametrize("document, text", [
    ({"b": b"\x00\xff"}, '{"b":{"$bytes":"AP8="}}'),
    ([math.inf, -math.inf], '[{"$float":"inf"},{"$float":"-inf"}]'),
    ({"$bytes": "x"}, '{"$$bytes":"x"}'),
    ({"$$float": 1, "$other": 2}, '{"$$$float":1,"$other":2}'),
    ({"n": 1.0, "big": 2**63 - 1}, '{"n":1.0,"big":9223372036854775807}'),
])
def test_the_documented_form(document: Any, text: str) -> None:
    assert jsonform.dumps(document) == text
    assert jsonform.loads(text, "x") == document


def test_nan_has_a_form_though_documents_refuse_it() -> None:
    assert jsonform.dumps(math.nan) == '{"$float":"nan"}'
    assert math.isnan(jsonform.loads('{"$float": "nan"}', "x"))


@pytest.mark.parametrize("text, message", [
    ('{"$bytes": "not base64!"}', "base64"),
    ('{"$bytes": 5}', "base64 string"),
    ('{"$float": "huge"}', '"inf", "-inf" or "nan"'),
    ("[1,", "not valid JSON"),
])
def test_bad_forms_are_invalid_input(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="DOC") as info:
        jsonform.loads(text, "DOC")
    assert message in str(info.value)
