"""Config formats by suffix (SPEC 1.12, 1.13): JSON in core, YAML/TOML/XYZ in ato-formats."""

import math

import pytest

from ato import xyz
from ato.adict import ADict
from ato.errors import ConfigFileError

VALUES = {"i": 1, "f": 0.5, "b": True, "s": "text: with (marks)", "neg": -3, "l": [1, 2.5, "x"],
          "m": {"n": {"deep": [{"k": "v"}]}}}


class TestRoundTrips:
    @pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml", ".toml"])
    def test_types_survive(self, tmp_path, suffix):
        """dump then from_file gives the same data and types."""
        path = tmp_path / f"c{suffix}"
        ADict(VALUES).dump(path)
        loaded = ADict.from_file(path)
        assert loaded == VALUES
        assert type(loaded.f) is float and type(loaded.b) is bool
        assert loaded.m.n.deep[0].k == "v"

    @pytest.mark.parametrize("suffix", [".json", ".yaml", ".xyz"])
    def test_none_survives(self, tmp_path, suffix):
        """Formats that can hold None keep it."""
        path = tmp_path / f"c{suffix}"
        ADict(a=None, b=1).dump(path)
        assert ADict.from_file(path) == {"a": None, "b": 1}

    def test_load_replaces_content_with_attribute_access(self, tmp_path):
        """config.load() takes TOML too, and nested keys get attribute access."""
        path = tmp_path / "c.toml"
        path.write_text('[model]\nbackbone = "resnet"\n')
        cfg = ADict(old=1)
        cfg.load(path)
        assert cfg.model.backbone == "resnet" and "old" not in cfg

    def test_jsonl_is_json_lines(self, tmp_path):
        """.jsonl holds one object per line and loads as a list of ADicts."""
        path = tmp_path / "runs.jsonl"
        path.write_text('{"a": 1}\n\n{"a": 2}\n')
        assert ADict.from_file(path) == [{"a": 1}, {"a": 2}]

    def test_integer_keys_from_yaml(self, tmp_path):
        """Non-string keys load (SPEC 1.1)."""
        path = tmp_path / "c.yaml"
        path.write_text("classes:\n  1: cat\n  2: dog\n")
        assert ADict.from_file(path).classes[2] == "dog"


class TestErrors:
    def test_toml_none_fails_before_writing(self, tmp_path):
        """TOML cannot hold None: the error names the key and the old file is intact."""
        path = tmp_path / "c.toml"
        path.write_text("kept = true\n")
        with pytest.raises(ConfigFileError, match=r"TOML cannot hold None \(key 'm.x'\)"):
            ADict(m={"x": None}).dump(path)
        assert path.read_text() == "kept = true\n"
        assert [p.name for p in tmp_path.iterdir()] == ["c.toml"]

    @pytest.mark.parametrize("name, text, where", [
        ("c.yaml", "a: 1\nb: [1, 2\n", "c.yaml:3:1"),
        ("c.json", '{"a": 1,\n "b": }', "c.json:2:7"),
        ("c.toml", "a = 1\nb = = 2\n", "c.toml:2:5"),
    ])
    def test_malformed_file_names_line_and_column(self, tmp_path, name, text, where):
        """A malformed file names the file, line and column."""
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ConfigFileError) as info:
            ADict.from_file(path)
        assert str(info.value).startswith(str(tmp_path / where))

    @pytest.mark.parametrize("name, text, message", [
        ("c5.toml", "a = [1,", "c5.toml:1:8: Invalid value (at end of document)"),
        ("c6.toml", "x = 1\na = [1,\n  2,\n\n", "c6.toml:3:5: Invalid value (at end of document)"),
        ("multi.yaml", "a: 1\n---\nb: 2\n",
         "multi.yaml:2:1: expected a single document in the stream, but found another document"),
        ("list.yaml", "- 1\n- 2\n", "list.yaml: the top level must be a mapping (or a list of "
                                      "mappings), but item 0 of its list is an int"),
        ("list.json", '[{"a": 1}, "x"]', "list.json: the top level must be a mapping (or a list of "
                                         "mappings), but item 1 of its list is a str"),
        ("num.json", "3", "num.json: the top level must be a mapping, not an int"),
        ("str.yaml", "hello\n", "str.yaml: the top level must be a mapping, not a str"),
        ("items.jsonl", '{"a": 1}\n3\n', "items.jsonl:2: the top level must be a mapping (or a "
                                          "list of mappings), but item 1 of its list is an int"),
        ("d.toml", "a = 1\nb = 2\na = 3\n", "d.toml:3:6: Cannot overwrite a value (first at "
                                             "line 1)"),
        ("d2.toml", "[t]\nx = 1\n\nx = {y = 1}\n", "d2.toml:4:12: Cannot overwrite a value "
                                                "(first at line 2)"),
        ("items2.jsonl", '{"a": 1}\n\n[1, 2]\n', "items2.jsonl:3: the top level must be a "
         "mapping (or a list of mappings), but item 1 of its list is a list"),
        ("dup.json", '{"a": 1, "a": 2}', "dup.json:1: duplicate key 'a' (first at line 1)"),
        ("dup2.json", '{"b": {"a": 1},\n "a": [{"a": 0}],\n "c": {"x": "\\"a\\":",\n\n "x": 3}}',
         "dup2.json:5: duplicate key 'x' (first at line 3)"),
        ("dup.jsonl", '{"a": 1}\n{"k": 1,\n', "dup.jsonl:2:9: Expecting property name enclosed in "
                                              "double quotes"),
        ("dup2.jsonl", '{"a": 1}\n\n{"k": 1, "k": 2}\n', "dup2.jsonl:3: duplicate key 'k' "
                                                         "(first at line 3)"),
        ("dup.xyz", "a: 1\n\nb:\n    c: 1\n\n    c: 2\n", "dup.xyz:6: duplicate key 'c' (first "
                                                       "at line 4)"),
        ("mixed.xyz", "a:\n    0) 1\n\n    x: 2\n", "mixed.xyz:4: key 'x' inside a sequence"),
        # a repeated index would drop data, like a repeated key
        ("idx.xyz", "a:\n  0) 1\n  0) 2\n", "idx.xyz:3: duplicate index 0 (first at line 2)"),
        ("idx2.xyz", "a:\n  0) 1\n  1)\n    0) x\n\n    0) y\n",
         "idx2.xyz:6: duplicate index 0 (first at line 4)"),
        # a scalar cannot have children: the indented line is not a sibling
        ("under.xyz", "a: 1\n  b: 2\n", "under.xyz:2: indented under line 1 ('a: 1'), whose "
         "value is a scalar, which cannot hold keys or items (indent it as line 1 for a "
         "sibling, or move the value into it)"),
        ("under2.xyz", "a:\n  0) 5\n\n      0) 6\n", "under2.xyz:4: indented under line 2 "
         "('0) 5'), whose value is a scalar, which cannot hold keys or items (indent it as "
         "line 2 for a sibling, or move the value into it)"),
    ])
    def test_whole_message_with_place(self, tmp_path, name, text, message):
        """Each refusal is one ConfigFileError naming the file and, where the format says
        where, the line and column: TOML's end of document, YAML's whole two-part message,
        a top level that is not a mapping, a JSON object repeating a key."""
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ConfigFileError) as info:
            ADict.from_file(path)
        assert str(info.value) == f"{tmp_path}/{message}"

    def test_json_without_duplicates_still_loads(self, tmp_path):
        path = tmp_path / "ok.json"
        path.write_text('{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]}')
        assert ADict.from_file(path).c == [{"x": 1}, {"x": 2}]

    @pytest.mark.parametrize("name, text", [
        ("deep.json", "[" * 3000 + "]" * 3000),
        ("deep.yaml", "a: " + "[" * 3000 + "]" * 3000),
        ("deep.toml", "a = " + "[" * 3000 + "]" * 3000),
        ("deep2.json", '{"a":' * 101 + "1" + "}" * 101),
        ("deep2.yaml", "".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "x: 1\n"),
        ("deep2.toml", "[" + ".".join(f"k{i}" for i in range(300)) + "]\nx = 1\n"),
    ])
    def test_deep_nesting_is_refused(self, tmp_path, name, text):
        """Data nested more than MAX_NESTING levels is one clear ConfigFileError naming the
        file, never a RecursionError."""
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ConfigFileError, match=rf"^{tmp_path}/{name}: mappings and lists "
                                                  rf"nested (too deeply to read|more than 100 "
                                                  rf"levels deep)"):
            ADict.from_file(path)

    def test_nesting_up_to_the_limit_loads(self, tmp_path):
        path = tmp_path / "ok.json"
        path.write_text('{"a":' * 99 + "1" + "}" * 99)
        assert ADict.from_file(path)["a"]["a"]["a"] is not None

    @pytest.mark.parametrize("ext", ["json", "yaml", "toml", "xyz"])
    @pytest.mark.parametrize("shape", ["dict", "list"])
    def test_dump_refuses_what_could_not_be_read_back(self, tmp_path, ext, shape):
        """A config nested deeper than a reader takes is refused at dump, naming the file
        and key path, and nothing is written; at the limit it round-trips."""
        def deep(levels):
            node = {"x": 1}
            for _ in range(levels - 1):
                node = {"a": node} if shape == "dict" else {"a": [node]}
            return node

        path = tmp_path / f"deep.{ext}"
        with pytest.raises(ConfigFileError, match=rf"^{path}: cannot be written: mappings "
                                                  rf"and lists nested more than 100 levels "
                                                  rf"deep \(at a"):
            ADict(deep(101 if shape == "dict" else 60)).dump(path)
        assert not path.exists()
        ok = deep(100 if shape == "dict" else 50)
        ADict(ok).dump(path)
        assert ADict.from_file(path).to_dict() == ok
        with pytest.raises(Exception, match="nested more than 100 levels deep"):
            ADict(deep(101 if shape == "dict" else 60)).json()

    @pytest.mark.parametrize("name, text", [
        ("bom.toml", "a = 1\n"), ("bom.json", '{"a": 1}'), ("bom.yaml", "a: 1\n"),
        ("bom.xyz", "a: 1\n"), ("bom.jsonl", '{"a": 1}\n'), ("bom2.jsonl", '[{"a": 1}]'),
    ])
    def test_a_leading_utf8_bom_is_read_past_in_every_format(self, tmp_path, name, text):
        """Editors on Windows save a byte order mark; it is no part of any format."""
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        loaded = ADict.from_file(path)
        loaded = loaded[0] if isinstance(loaded, list) else loaded
        assert loaded.to_dict() == {"a": 1}

    @pytest.mark.parametrize("levels, fanout", [(8, 10), (3, 200), (20, 2)])
    def test_yaml_alias_bomb_is_refused_before_expanding(self, tmp_path, levels, fanout):
        """Anchors used inside anchors multiply ("billion laughs"): refused at once, naming
        the file, by the values the aliases add (counted on the node graph)."""
        import time

        lines = [f"a0: &a0 [{', '.join(['x'] * fanout)}]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]"
                  for i in range(1, levels + 1)]
        path = tmp_path / "bomb.yaml"
        path.write_text("\n".join(lines) + "\n")
        start = time.monotonic()
        with pytest.raises(ConfigFileError, match=rf"^{path}: aliases expand to more than "
                                                  rf"1,000,000 values"):
            ADict.from_file(path)
        assert time.monotonic() - start < 10

    def test_yaml_aliases_of_modest_size_and_plain_data_load(self, tmp_path):
        path = tmp_path / "ok.yaml"
        path.write_text("base: &b {lr: 1, bs: [1, 2]}\nx: *b\ny: {<<: *b, lr: 3}\n"
                        "many: &m [" + ", ".join(["*b"] * 1000) + "]\nmore: [*m, *m]\n")
        config = ADict.from_file(path)
        assert config.y.to_dict() == {"lr": 3, "bs": [1, 2]} and len(config.more[1]) == 1000
        plain = tmp_path / "plain.yaml"  # many values, no alias: no limit
        plain.write_text("a:\n" + "".join(f"  - {i}\n" for i in range(20000)))
        assert len(ADict.from_file(plain).a) == 20000

    @pytest.mark.parametrize("text, where", [
        ("a: &a\n  b: *a\n", "2:6: recursive alias: *a is used inside its own anchor &a (line 1)"),
        ("x: 1\na: &a\n  b: [1, {c: *a}]\n", "3:14: recursive alias: *a is used inside its "
                                              "own anchor &a (line 2)"),
        ("a: &a [*a]\n", "1:8: recursive alias: *a is used inside its own anchor &a (line 1)"),
    ])
    def test_recursive_yaml_alias_is_refused(self, tmp_path, text, where):
        """An alias inside its own anchor would make a config that contains itself: refused
        with the file, line and column of the alias."""
        path = tmp_path / "rec.yaml"
        path.write_text(text)
        with pytest.raises(ConfigFileError) as info:
            ADict.from_file(path)
        assert str(info.value) == f"{path}:{where}, so the value would contain itself"

    def test_shared_yaml_alias_is_no_cycle(self, tmp_path):
        path = tmp_path / "ok.yaml"
        path.write_text("a: &a {q: 1}\nb: [*a, *a]\nc: *a\n")
        assert ADict.from_file(path).to_dict() == {"a": {"q": 1}, "b": [{"q": 1}, {"q": 1}],
                                                   "c": {"q": 1}}

    def test_a_container_holding_itself_is_named(self):
        """The format-independent check names the key that loops back."""
        from ato.representable import nesting_problem

        a: dict = {"b": {}}
        a["b"]["c"] = a
        assert nesting_problem({"top": a}) == ("a value that contains itself: top.b.c is top "
                                               "itself")

    def test_yaml_is_loaded_safely(self, tmp_path):
        """Python tags are refused (safe loader only)."""
        path = tmp_path / "evil.yaml"
        path.write_text("a: !!python/object/apply:os.system ['echo pwned']\n")
        with pytest.raises(ConfigFileError, match="could not determine a constructor"):
            ADict.from_file(path)

    def test_missing_file(self, tmp_path):
        """A missing path is reported before its suffix is looked at."""
        with pytest.raises(FileNotFoundError, match="does not exist"):
            ADict.from_file(tmp_path / "nope.weird")


class TestXYZ:
    EXAMPLE = ADict(lr=0.001, flag=True, nothing=None, layers=[64, 128],
                    model={"backbone": "r50", "head": {"classes": 10}}, empty_list=[],
                    empty_map={}, grid=[[1, 2], {"k": "v"}])

    def test_written_form(self):
        """The written form is exactly SPEC 1.13's example."""
        assert self.EXAMPLE.to_xyz() == (
            "lr: 0.001\nflag: True\nnothing: None\nlayers:\n  0) 64\n  1) 128\nmodel:\n"
            "  backbone: r50\n  head:\n    classes: 10\nempty_list: [Empty Sequence]\n"
            "empty_map: [Empty Mapping]\ngrid:\n  0)\n    0) 1\n    1) 2\n  1)\n    k: v")
        assert ADict().to_xyz() == " [Empty Mapping]"

    def test_reading_fixes(self):
        """Negative numbers, ':' and ')' in values, odd numbers and inf/nan read correctly."""
        text = xyz.dumps({"a": -3, "b": -0.5, "c": "x: y", "d": "f(x)", "e": "1.2.3",
                          "g": float("inf"), "h": float("-inf"), "i": "infinity"})
        assert xyz.loads(text) == {"a": -3, "b": -0.5, "c": "x: y", "d": "f(x)", "e": "1.2.3",
                                   "g": float("inf"), "h": float("-inf"), "i": "infinity"}
        assert math.isnan(xyz.loads(xyz.dumps({"n": float("nan")}))["n"])

    def test_round_trip(self):
        """XYZ round-trips the example (lossy only for number-like strings)."""
        assert xyz.loads(self.EXAMPLE.to_xyz()) == self.EXAMPLE.to_dict()

    def test_custom_format_round_trips(self):
        """Custom markers are written with hyphenated header names and read back."""
        text = xyz.dumps({"a": {"b": 1}}, format_dict={"key_postfix": " ="})
        assert text.startswith("key-postfix ->  =")
        assert xyz.loads(text) == {"a": {"b": 1}}


class TestXYZRefusalReasons:
    """Every refusal of a ``.xyz`` write names the real reason (and nothing is written)."""

    @pytest.mark.parametrize("data, reason", [
        ({"s": ""}, "the string '' (it would read back as None) (key 's')"),
        ({"s": "100"}, "the string '100' (it would read back as 100) (key 's')"),
        ({"s": " pad"}, "the string ' pad' (it would read back as 'pad') (key 's')"),
        ({"s": "none"}, "the string 'none' (it would read back as None) (key 's')"),
        ({"s": "[Empty Mapping]"}, "(it would read back as {}) (key 's')"),
        ({"s": "a\nb"}, "the string 'a\\nb' (it holds a line break"),
        ({"s": "a\r"}, "the string 'a\\r' (it holds a line break"),
        ({"s": "a\u2028b"}, "(it holds a line break"),
        ({"l": [1, "2"]}, "the string '2' (it would read back as 2) (key 'l[1]')"),
        ({"b": b"x"}, "cannot hold a bytes (b'x') (key 'b')"),
        ({"k\n": 1}, "the key 'k\\n' (it holds a line break"),
        ({"a:b": 1}, "the key 'a:b' (it holds the key marker ':')"),
        ({" k": 1}, "the key ' k' (it has leading or trailing spaces"),
        ({"0) x": 1}, "the key '0) x' (it starts like a list index)"),
        ({"key-prefix -> x": 1}, "(it reads like a format header"),
        ({2: 1}, "the key 2 (an int; XYZ keys read back as strings)"),
    ])
    def test_reason(self, tmp_path, data, reason):
        path = tmp_path / "c.xyz"
        with pytest.raises(ConfigFileError) as info:
            ADict(data).dump(path)
        assert reason in str(info.value), str(info.value)
        assert not path.exists()

    def test_non_str_scalar_is_not_called_a_string(self, tmp_path):
        import enum

        class Level(enum.IntEnum):
            HIGH = 3

        with pytest.raises(ConfigFileError) as info:
            ADict(level=Level.HIGH).dump(tmp_path / "c.xyz")
        assert "the string" not in str(info.value)
        assert "it would read back as" in str(info.value)

    @pytest.mark.parametrize("data", [{"": 1}, {"s": "x: y"}, {"s": "f(x)"}, {"k-p": "a -> b"}])
    def test_what_reads_back_is_written(self, tmp_path, data):
        ADict(data).dump(tmp_path / "c.xyz")
        assert ADict.from_file(tmp_path / "c.xyz") == data
