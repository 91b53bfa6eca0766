from __future__ import annotations

import io

import pytest

from imagestore.oci import jsonbounds
from imagestore.oci.errors import CorruptArchive, InvalidJSON, LimitExceeded


def test_depth_up_to_the_limit_parses_and_one_more_is_refused() -> None:
    assert jsonbounds.loads(b"[" * 64 + b"]" * 64, what="doc") is not None
    with pytest.raises(LimitExceeded, match="doc nests deeper than the limit of 64 levels") as caught:
        jsonbounds.loads(b'{"a":' * 65 + b"1" + b"}" * 65, what="doc")
    assert caught.value.limit == 64


def test_brackets_inside_strings_do_not_count() -> None:
    text = '["' + "[{" * 10_000 + '\\"[", {"k": "]]]"}]'
    assert jsonbounds.loads(text)[1] == {"k": "]]]"}


def test_size_is_capped_both_for_bytes_and_for_streams() -> None:
    assert jsonbounds.read_capped(io.BytesIO(b"x" * 100), max_size=100) == b"x" * 100
    with pytest.raises(LimitExceeded, match="is larger than the limit of 100 bytes"):
        jsonbounds.read_capped(io.BytesIO(b"x" * 101), max_size=100)
    with pytest.raises(LimitExceeded, match="the manifest is larger than the limit of 4 MiB"):
        jsonbounds.loads(b" " * ((4 << 20) + 1), what="the manifest")
    assert jsonbounds.load(io.BytesIO(b'{"a": [1]}')) == {"a": [1]}


def test_invalid_json_is_a_typed_error() -> None:
    with pytest.raises(InvalidJSON, match="index.json is not valid JSON") as caught:
        jsonbounds.loads(b"{nope", what="index.json")
    assert isinstance(caught.value, CorruptArchive)
    with pytest.raises(InvalidJSON):
        jsonbounds.loads(b"\xff\xfe")
