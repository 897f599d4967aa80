"""ADict behaviour pinned to SPEC.md section 1."""

import copy
import pickle

import pytest

from ato.adict import ADict
from ato.errors import FrozenError


class TestNature:
    def test_mapping_not_dict(self):
        """An ADict is a mapping equal to dicts but not a dict subclass."""
        a = ADict(a=1)
        assert a == {"a": 1}
        assert not isinstance(a, dict)
        assert repr(ADict(a=1, m={"x": 1})) == "{'a': 1, 'm': {'x': 1}}"

    def test_non_string_keys(self):
        """Any hashable key works, including in nested mappings."""
        a = ADict({1: "x", "n": {2: "y"}})
        a[3] = "z"
        assert a[1] == "x" and a.n[2] == "y" and a[3] == "z"

    def test_key_named_default_is_kept(self):
        """A nested key named 'default' is data, never a factory."""
        a = ADict({"opt": {"default": "adam"}})
        assert a.opt.default == "adam"
        assert a.opt.get_default() is None


class TestStoring:
    def test_mappings_become_adicts_and_tuples_lists(self):
        """Stored values are rebuilt: mappings become ADicts, tuples lists."""
        sub = ADict()
        a = ADict()
        a.m = sub
        sub.x = 1
        assert a.m == {}
        a.t = (1, {"k": 2})
        assert a.t == [1, {"k": 2}] and type(a.t) is list
        assert isinstance(a.t[1], ADict)
        lst = [1]
        a.l = lst
        lst.append(2)
        assert a.l == [1]

    def test_assigned_auto_stays_auto(self):
        """Assigning an auto ADict keeps its factory."""
        a = ADict()
        a.child = ADict.auto()
        a.child.x.y = 1
        assert a.to_dict() == {"child": {"x": {"y": 1}}}

    def test_multi_key_assignment(self):
        """A tuple of keys zips; a list of keys with one value fills all."""
        a = ADict()
        a[("a", "b")] = (1, 2)
        a[["c", "d"]] = 0
        assert a == {"a": 1, "b": 2, "c": 0, "d": 0}
        assert a[["a", "c"]] == [1, 0]


class TestReading:
    def test_missing_key_errors(self):
        """Missing keys raise KeyError with the seed message, AttributeError for attributes."""
        a = ADict()
        with pytest.raises(KeyError, match='The key "k" does not exist.'):
            a["k"]
        with pytest.raises(AttributeError):
            a.k

    def test_method_names_need_item_syntax(self):
        """A key named like a method is reachable with item syntax only."""
        a = ADict()
        a.items = 1
        assert a["items"] == 1
        assert callable(a.items)

    def test_get_honours_caller_default(self):
        """get() returns the caller's default even with a factory."""
        assert ADict.auto().get("x", 5) == 5
        assert "x" not in ADict.auto()

    def test_reads_see_updates(self):
        """A cached read never goes stale after a write or delete."""
        a = ADict(x=1)
        assert a.x == 1
        a.x = 2
        assert a.x == 2
        a["x"] = 3
        assert a.x == 3
        del a.x
        with pytest.raises(AttributeError):
            a.x
        a.update(x=4)
        assert a.x == 4


class TestAuto:
    def test_seed_example(self):
        """SEED.md: chained assignment creates the structure."""
        config = ADict.auto()
        config.model.backbone.layers = [64, 128, 256]
        config.data.augmentation.brightness = 0.2
        assert config.to_dict() == {"model": {"backbone": {"layers": [64, 128, 256]}},
                                    "data": {"augmentation": {"brightness": 0.2}}}

    def test_default_factory(self):
        """default= installs a factory; set/remove_default change only the factory."""
        a = ADict(default=list)
        a.x.append(1)
        assert a == {"x": [1]}
        a.remove_default()
        assert a == {"x": [1]} and a.get_default() is None
        a.set_default(0)
        assert a.y == 0 and "_default" not in a

    def test_auto_pickles(self):
        """Auto ADicts survive pickling (needed by torch.distributed collectives)."""
        a = ADict.auto(x=1)
        b = pickle.loads(pickle.dumps(a))
        b.m.n = 2
        assert b.to_dict() == {"x": 1, "m": {"n": 2}}


class TestFreeze:
    def test_frozen_writes_raise_and_change_nothing(self):
        """Writes to a frozen ADict raise FrozenError, at any depth, and change nothing."""
        a = ADict(x=1, m={"y": [1, 2]}).freeze()
        for action in (lambda: setattr(a, "x", 2), lambda: a.update(x=3),
                       lambda: a.m.__setitem__("y", 0), lambda: a.pop("x"),
                       lambda: a.__delitem__("x")):
            with pytest.raises(FrozenError):
                action()
        a.m.y.append(3)
        assert a.to_dict() == {"x": 1, "m": {"y": [1, 2]}}
        assert type(a.m.y) is list

    def test_defrost(self):
        """defrost() makes the tree writable again; freeze/defrost return self."""
        a = ADict(m={"y": 1})
        assert a.freeze() is a and a.frozen and a.m.frozen
        assert a.defrost() is a
        a.m.y = 2
        assert a.m.y == 2

    def test_frozen_missing_key_raises_even_with_factory(self):
        """No factory value is created while frozen."""
        with pytest.raises(AttributeError):
            ADict.auto().freeze().x


class TestStructuralHash:
    def test_seed_values(self):
        """Exact hash values from SPEC 1.7, comparable with the original library."""
        c1 = ADict(lr=0.1, epochs=100, model="resnet50")
        c2 = ADict(lr=0.01, epochs=200, model="resnet101")
        c3 = ADict(lr=0.1, epochs="100", model="resnet50")
        assert c1.get_structural_hash() == "5e18881b059958b041fa667d69c620cae05c29a2"
        assert c1.get_structural_hash() == c2.get_structural_hash()
        assert c1.get_structural_hash() != c3.get_structural_hash()
        assert ADict().get_structural_hash() == "da39a3ee5e6b4b0d3255bfef95601890afd80709"

    def test_rules(self):
        """Empty mappings vanish, dotted keys collide with nesting, tuples hash as lists."""
        assert ADict(a=1, sub={}).get_structural_hash() == ADict(a=1).get_structural_hash()
        assert ADict({"m.d": 1}).get_structural_hash() == ADict(m={"d": 1}).get_structural_hash()
        assert ADict(t=(1,)).get_structural_hash() == ADict(t=[1, 2]).get_structural_hash()
        assert ADict(a=True).get_structural_hash() != ADict(a=1).get_structural_hash()
        assert ADict(a=1, b=2).get_structural_repr() == {"a": "int", "b": "int"}

    def test_hash_does_not_count_as_access(self):
        """Hashing, to_dict and json leave accessed_keys alone."""
        a = ADict(x=1, y={"z": 2})
        a.get_structural_hash()
        a.to_dict()
        a.json()
        assert a.accessed_keys == set()


class TestUpdate:
    def test_recursive_update(self):
        """recurrent=True merges nested mappings; a scalar meeting a mapping is replaced."""
        a = ADict(m={"x": 1, "y": 2}, s=5)
        a.update({"m": {"x": 10}, "s": {"k": 1}}, recurrent=True)
        assert a == {"m": {"x": 10, "y": 2}, "s": {"k": 1}}
        a.update(m={"z": 0})
        assert a.m == {"z": 0}

    def test_update_if_absent(self):
        """SEED.md: only missing keys are added, nested too; scalars are kept."""
        assert ADict(lr=0.1).update_if_absent(lr=0.01, scheduler="cosine") == {
            "lr": 0.1, "scheduler": "cosine"}
        a = ADict(sub={"a": 1}).update_if_absent(sub={"a": 2, "b": 3}, epochs=3)
        assert a == {"sub": {"a": 1, "b": 3}, "epochs": 3}
        assert ADict(m=5).update_if_absent(m={"x": 1}) == {"m": 5}


class TestAccessedKeys:
    def test_minimal_config(self):
        """Only the keys read remain, in original order."""
        m = ADict(a=1, b=2, sub={"x": 1, "y": 2}, unused={"z": 1})
        m.a
        m.sub.x
        assert m.get_minimal_config().to_dict() == {"a": 1, "sub": {"x": 1}}
        assert m.accessed_keys == {"a", "sub"}
        assert list(m.get_minimal_config()) == ["a", "sub"]


class TestCopies:
    def test_copy_and_or(self):
        """copy() is shallow and leaves the original alone; |= updates in place."""
        a = ADict(x=1, m={"y": 1})
        b = a.copy()
        assert "_data" not in a and "_data" not in b
        assert b.m is a.m
        a |= {"z": 2}
        assert a == {"x": 1, "m": {"y": 1}, "z": 2} and "_data" not in a
        assert (a | {"x": 9}).x == 9 and ({"x": 9, "q": 1} | a).x == 1

    def test_clone_is_independent_and_unfrozen(self):
        """clone() deep-copies, keeps the factory, drops frozen and accessed state."""
        a = ADict.auto(m={"y": [1]})
        a.m
        a.freeze()
        b = a.clone()
        assert b.accessed_keys == set()
        assert not b.frozen and not b.m.frozen
        b.m.y.append(2)
        assert a.m.y == [1]
        b.new.deep = 1
        assert copy.deepcopy(b) == b


class TestHelpers:
    def test_misc(self):
        """filter, raw, get_value_by_name, replace_keys, fromkeys, json."""
        a = ADict(a=1, b=2, m={"d": {"e": 3}})
        assert a.get_value_by_name("m.d.e") == 3
        assert a.raw("a") == {"key": "a", "value": 1}
        a.filter(lambda k, v: k != "b")
        assert list(a) == ["a", "m"]
        a.replace_keys(["a"], ["z"])
        assert list(a) == ["m", "z"]
        with pytest.raises(IndexError):
            a.replace_keys(["m"], [])
        with pytest.raises(KeyError):
            a.replace_keys(["nope"], ["x"])
        assert ADict.fromkeys(["p", "q"], 0) == {"p": 0, "q": 0}
        assert ADict(a=1, b={"c": [1, 2]}).json() == '{"a": 1, "b": {"c": [1, 2]}}'


class TestDumpFiles:
    """``ADict.dump`` writes like ``open(path, "w")``: umask-derived mode for a new file,
    the existing mode kept; missing folders created (SPEC 1.12) only for accepted writes."""

    @pytest.fixture
    def umask(self):
        import os

        old = os.umask(0o027)
        yield 0o027
        os.umask(old)

    @pytest.mark.parametrize("name", ["c.json", "c.xyz", "c.jsonl"])
    def test_new_file_gets_the_umask_mode(self, tmp_path, umask, name):
        import os
        import stat

        ADict(a=1).dump(tmp_path / name)
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~umask
        with open(tmp_path / "plain", "w"):
            pass
        assert stat.S_IMODE(os.stat(tmp_path / "plain").st_mode) == 0o640

    @pytest.mark.parametrize("mode", [0o644, 0o600, 0o664, 0o444 | 0o200])
    def test_existing_file_keeps_its_mode(self, tmp_path, umask, mode):
        import os
        import stat

        path = tmp_path / "c.json"
        path.write_text("{}")
        os.chmod(path, mode)
        ADict(a=1).dump(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
        assert ADict.from_file(path) == {"a": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temp file left

    def test_missing_folders_are_created_only_for_an_accepted_write(self, tmp_path):
        """SPEC 1.12: dump creates missing parents, but a refused suffix or value leaves
        no folder behind (the original created it before failing)."""
        from ato.errors import ConfigFileError, UnknownPluginError

        with pytest.raises(UnknownPluginError):
            ADict(a=1).dump(tmp_path / "a" / "b" / "c.zzz")
        with pytest.raises(ConfigFileError):
            ADict(s="").dump(tmp_path / "a" / "b" / "c.xyz")
        assert list(tmp_path.iterdir()) == []
        ADict(a=1).dump(tmp_path / "a" / "b" / "c.json")
        assert ADict.from_file(tmp_path / "a" / "b" / "c.json") == {"a": 1}

    def test_parent_that_is_a_file_is_an_os_error(self, tmp_path):
        (tmp_path / "f").write_text("")
        with pytest.raises(OSError, match="f"):
            ADict(a=1).dump(tmp_path / "f" / "c.json")
