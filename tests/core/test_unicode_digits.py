"""Unicode digits that are not ASCII ("²", "٣", "৪") pass ``str.isdigit()`` but ``int()``
refuses or misreads them: wherever text decides "this is a number / an index", they must
stay text, never crash (found by the property test of tests/formats/test_scalars.py)."""

import pytest

from ato.adict import ADict
from ato.errors import CLIError
from ato.grammar import match_key, parse_args

DIGITS = ["²", "٣", "৪", "1²", "²1", "x²", "٣.5"]


@pytest.mark.parametrize("ext", [".json", ".yaml", ".toml", ".xyz"])
@pytest.mark.parametrize("text", DIGITS)
def test_a_string_of_unicode_digits_round_trips_as_text(tmp_path, ext, text):
    path = tmp_path / f"c{ext}"
    ADict(a=text, nested={"k": [text]}).dump(str(path))
    back = ADict.from_file(str(path))
    assert back.a == text and back.nested.k == [text]


@pytest.mark.parametrize("text", ["²", "٣", "৪"])
def test_a_unicode_digit_is_not_an_index_on_the_command_line(text):
    with pytest.raises(CLIError) as e:
        parse_args([f"layers.{text}=3"])
    assert "not a valid key" in str(e.value)
    assert match_key({1: "a"}, text, f"layers.{text}") == text  # no int() of it


def test_an_ascii_index_still_names_an_int_key():
    assert match_key({1: "a"}, "1", "layers.1=3") == 1
