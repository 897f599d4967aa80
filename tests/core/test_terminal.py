from ato.terminal import display_width


def test_wide_characters_take_two_columns_and_zero_width_ones_none():
    # precomposed, decomposed (combining acute), zero-width space, CJK, full-width A
    cases = ("été", "e\u0301te\u0301", "a\u200bb", "漢字", "\uff21", "")
    assert [display_width(t) for t in cases] == [3, 3, 2, 4, 2, 0]
