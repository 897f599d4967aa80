"""OpenMMLab configs beyond plain inheritance: statements on the ``_base_`` namespace,
``{{_base_.x}}`` placeholders in expressions and strings, and MMEngine's reserved keys.

Where MMEngine gives the right answer, the fixtures are in ``interop_cases.MM_CASES`` and
compared with MMEngine's own output (test_mmlab.py); the tests here pin what that
comparison cannot: the cases where Ato does better, and the errors."""

from __future__ import annotations

import sys
import warnings

import pytest

from ato.adict import ADict
from ato.errors import ConfigFileError
from tests.mmlab.interop_cases import MM_CASES, OPENMMLAB, load_expected, normalise

MMDET = OPENMMLAB / "mmdet-3.3"


def load(path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return normalise(ADict.from_mm_config(path).to_dict())


def strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def base(tmp_path):
    """A base with a mapping, a list, a string and a number."""
    write(tmp_path, "base.py", "model = dict(type='Net', depth=50, neck=dict(out=256))\n"
                               "scale = [1333, 800]\nname = 'coco'\nlr = 0.02\n")
    return tmp_path


class TestBaseNamespace:
    def test_release_tracking_configs(self):
        """The MMDetection 3.3 tracking configs (alias, pop, update, del _base_.model) load
        as MMEngine loads them; the detector is the base model, edited."""
        cfg = load(MMDET / "qdtrack/qdtrack_faster-rcnn_r50_fpn_4e_base.py")
        assert cfg["model"]["type"] == "QDTrack"
        detector = cfg["model"]["detector"]
        assert detector["type"] == "FasterRCNN" and "data_preprocessor" not in detector
        assert detector["backbone"]["style"] == "caffe" and detector["backbone"]["depth"] == 50
        assert detector["roi_head"]["bbox_head"]["num_classes"] == 1
        assert cfg["detector"] == detector
        case = "mmdet-3.3/qdtrack/qdtrack_faster-rcnn_r50_fpn_4e_base.py"
        assert case in MM_CASES and cfg == load_expected("mmengine")[case]

    def test_del_removes_the_base_key(self):
        """After `del _base_.model` the child's model replaces the base's (no merge)."""
        cfg = load(OPENMMLAB / "namespace/del_after_alias.py")
        assert set(cfg["model"]) == {"type", "detector"}
        assert cfg["model"]["detector"]["backbone"]["norm_cfg"] == {"type": "GN", "requires_grad": True}
        assert "rpn_head" not in cfg["model"]["detector"] and "lr_config" not in cfg

    def test_statements(self):
        """Item access, pop with MMEngine's default None, augmented assignment through
        attributes and items, nested writes, comprehensions and copies."""
        cfg = load(OPENMMLAB / "namespace/item_pop_augmented.py")
        assert cfg["lr"] == 0.02 and "optimizer" not in cfg and cfg["missing"] is None
        assert cfg["data"]["samples_per_gpu"] == 8 and cfg["runner"]["max_epochs"] == 24
        assert cfg["img_scale"] == [800, 1333] and cfg["model"]["neck"]["num_outs"] == 4
        assert cfg["neck"] == cfg["model"]["neck"] and cfg["has_model"] is True
        cfg = load(OPENMMLAB / "namespace/iterate.py")
        assert cfg["frozen"]["depth"] == 50 and cfg["model"]["backbone"]["depth"] == 18
        assert cfg["shallow"]["lr"] == 0.5 and cfg["optimizer"]["lr"] == 0.02
        assert cfg["lr_scaled"] == 0.04 and "lr_config" not in cfg and "scaled" not in cfg
        cfg = load(OPENMMLAB / "namespace/nested_write.py")
        assert cfg["model"]["backbone"]["depth"] == 152
        assert cfg["model"]["backbone"]["norm_cfg"] == {"type": "GN", "num_groups": 16}
        assert cfg["model"]["neck"]["extra"] == {"kind": "p6"} and cfg["custom"] == {"a": 1, "b": 2}

    def test_update_merges_recursively(self, base):
        """`_base_.model.update(...)` merges nested mappings, as ConfigDict.update does."""
        child = write(base, "c.py", "_base_ = 'base.py'\n_base_.model.update(neck=dict(extra=1))\n")
        assert load(child)["model"]["neck"] == {"out": 256, "extra": 1}

    def test_plain_dicts_stored_become_namespaces(self, base):
        """A dict assigned into _base_ is copied into a namespace: attribute writes work on
        it, and later edits of the original dict do not leak into the bases."""
        child = write(base, "c.py", "_base_ = 'base.py'\nd = dict(a=1)\n_base_.extra = d\n"
                                    "d['b'] = 2\n_base_.extra.c = 3\n")
        cfg = load(child)
        assert cfg["extra"] == {"a": 1, "c": 3} and cfg["d"] == {"a": 1, "b": 2}

    @pytest.mark.parametrize("statement, message", [
        ("del _base_.nope", r"c.py:2: AttributeError: _base_ has no key 'nope' here \(its keys: "
                            r"lr, model, name, scale\)"),
        ("x = _base_.model.nope", r"c.py:2: AttributeError: _base_ has no key 'nope' here "
                                  r"\(its keys: depth, neck, type\)"),
        ("x = _base_['nope']", r"c.py:2: KeyError: 'nope'"),
        ("_base_.update = 1", r"c.py:2: AttributeError: 'update' is a method of the _base_ "
                              r"namespace and cannot be set as an attribute; write \['update'\] instead"),
    ])
    def test_errors_name_file_line_and_key(self, base, statement, message):
        """A statement on a key the bases lack fails naming the file, line and key."""
        child = write(base, "c.py", f"_base_ = 'base.py'\n{statement}\n")
        with pytest.raises(ConfigFileError, match=message):
            load(child)

    def test_base_list_joined_with_plus(self, base):
        """`_base_ = [...] + [...]` is read without running the file."""
        write(base, "other.py", "other = 1\n")
        child = write(base, "c.py", "_base_ = ['base.py'] + ['other.py']\n")
        assert load(child)["other"] == 1
        bad = write(base, "bad.py", "import os\n_base_ = os.environ['X']\n")
        with pytest.raises(ConfigFileError, match=r"bad.py:2: _base_ must be a string or a list of "
                                                  r"strings \(literals, optionally joined with \+\)"):
            load(bad)


class TestPlaceholders:
    def test_expressions_compute(self):
        """{{_base_.x}} in expressions, string literals (also implicitly concatenated and
        raw) and list items gives what the same config written with _base_.x gives in
        MMEngine; a numeric path part indexes a list."""
        ours = load(OPENMMLAB / "braces/expressions.py")
        plain = load_expected("mmengine")["braces/expressions_plain.py"]
        assert ours == plain
        assert ours["short_scale"] == [1333] and ours["triple"] == 768
        assert ours["work_dir"] == "runs/CocoDataset/x" and ours["joined"] == "depth-50-end"
        assert ours["tag"] == "cocodataset@5" and ours["ratio"] == "1.0" and ours["first_stride"] == 4

    def test_yaml_structural(self):
        """In YAML a whole-value placeholder takes the value (any type); inside a string
        the text of a string or number is spliced in."""
        cfg = load(OPENMMLAB / "braces/strings.yaml")
        assert {k: cfg[k] for k in ("work_dir", "quoted", "single", "scale", "batch", "label",
                                    "first_step", "nested")} == {
            "work_dir": "runs/CocoDataset/x", "quoted": "CocoDataset", "single": "CocoDataset",
            "scale": [1333, 800], "batch": 2, "label": "bs2-1333",
            "first_step": {"type": "LoadImageFromFile"},
            "nested": [{"keep": {"samples_per_gpu": 2, "workers_per_gpu": 2}}]}

    def test_json_structural(self):
        """In JSON a bare placeholder is a value, one inside a string (escapes included) is
        spliced in."""
        cfg = load(OPENMMLAB / "braces/strings.json")
        assert {k: cfg[k] for k in ("work_dir", "scale", "escaped", "items")} == {
            "work_dir": "runs/CocoDataset/x", "scale": [1333, 800],
            "escaped": 'a "quote" and 2', "items": ["CocoDataset", "n2"]}

    def test_keys_that_are_not_attribute_names(self, tmp_path):
        """A placeholder path through a key that is a keyword or starts with a digit works
        (MMEngine's text substitution allows any such key)."""
        write(tmp_path, "b.yaml", "m:\n  class: 3\n  2d: [7, 8]\n")
        child = write(tmp_path, "c.py", "_base_ = 'b.yaml'\nx = {{_base_.m.class}} + {{_base_.m.2d.1}}\n")
        assert load(child)["x"] == 11

    def test_reference_sees_writes_made_before_it(self, base):
        """A placeholder in code is the base value at that point, aliased as _base_.x is."""
        child = write(base, "c.py", "_base_ = 'base.py'\nm = {{_base_.model}}\nm.depth = 101\n")
        cfg = load(child)
        assert cfg["m"]["depth"] == 101 and cfg["model"]["depth"] == 101

    def test_docstrings_and_comments_are_left_alone(self, base):
        """A placeholder in a comment or in a string that is a statement of its own (a
        docstring) is never a value: it is neither computed nor refused."""
        child = write(base, "c.py", '"""Uses {{_base_.model}} and {{_base_.nope}}."""\n'
                                    "_base_ = 'base.py'  # {{_base_.model}}\n"
                                    "if True:\n    '{{_base_.scale}}'\n    x = '{{_base_.name}}'\n")
        assert load(child)["x"] == "coco"

    @pytest.mark.parametrize("name, text, message", [
        ("c.py", "_base_ = 'base.py'\n\nx = 'a/{{_base_.model}}'\n",
         r"c.py:3: \{\{_base_.model\}\} is used inside a string, but its value is a dict; only "
         r"strings and numbers can be spliced into text \(write the reference as the whole value instead\)"),
        ("c.py", "_base_ = 'base.py'\nx = ('a'\n     '{{_base_.nope}}')\n",
         r"c.py:2: \{\{_base_.nope\}\}: _base_ has no 'nope' \(_base_ is a mapping without it\)"),
        ("c.py", "_base_ = 'base.py'\nx = {{_base_.scale.5}}\n",
         r"c.py:2: IndexError: list index out of range"),
        ("c.py", "_base_ = 'base.py'\nx = {{_base_.nope}} * 2\n",
         r"c.py:2: AttributeError: _base_ has no key 'nope'"),
        ("c.py", "_base_ = 'base.py'\nx = f'{{_base_.name}}'\n",
         r"c.py:2: \{\{_base_...\}\} inside an f-string: there \{\{ is an escaped brace; write "
         r"\{_base_.name\} in the f-string, or use a plain string"),
        ("c.yaml", "_base_: base.py\na: 1\nwork_dir: runs/{{_base_.scale}}/x\n",
         r"c.yaml:3: \{\{_base_.scale\}\} is used inside a string, but its value is a list"),
        ("c.yaml", "_base_: base.py\nx: {{_base_.model.neck.missing}}\n",
         r"c.yaml:2: \{\{_base_.model.neck.missing\}\}: _base_.model.neck has no 'missing'"),
        ("c.json", '{"_base_": "base.py",\n "x": "{{_base_.lr.0}}"}',
         r"c.json:2: \{\{_base_.lr.0\}\}: _base_.lr has no '0' \(_base_.lr is float\)"),
    ])
    def test_errors_name_file_and_line(self, base, name, text, message):
        """A placeholder with no well-defined value is refused, naming file and line."""
        with pytest.raises(ConfigFileError, match=message):
            load(write(base, name, text))

    @pytest.mark.parametrize("case", [*MM_CASES, "braces/expressions.py", "braces/strings.yaml",
                                      "braces/strings.json", "reserved/delete_in_list.py"])
    def test_no_placeholder_reaches_the_result(self, case, monkeypatch):
        """No placeholder text (MMEngine's or Ato's own tokens) in any loaded fixture."""
        monkeypatch.setenv("ATO_TEST_DATA_ROOT", "/datasets/coco/")
        for text in strings(load(OPENMMLAB / case)):
            assert "{{" not in text and "__ato_base_ref_" not in text, (case, text)


class TestReservedKeys:
    def test_delete_inside_lists(self):
        """_delete_ in mappings inside lists and tuples is removed like everywhere else."""
        cfg = load(OPENMMLAB / "reserved/delete_in_list.py")
        assert cfg["train_pipeline"] == [{"type": "LoadImageFromFile"},
                                         {"type": "Resize", "scale": {"w": 1}, "keep_ratio": True}]
        assert cfg["data"] == {"samples_per_gpu": 1, "extra": [{"a": 1}]}
        assert cfg["model"] == {"heads": [{"type": "A", "cfg": {"x": [{"y": 2}]}}]}
        assert "_delete_" not in repr(cfg)

    def test_delete_at_the_root(self, base):
        """A top-level _delete_=True replaces the merged bases as in any mapping (they
        still serve references); _delete_=False merges; the marker never stays."""
        child = write(base, "c.yaml", "_base_: base.py\n_delete_: true\nname: {{_base_.name}}\n")
        assert load(child) == {"name": "coco"}
        child = write(base, "d.py", "_base_ = 'base.py'\n_delete_ = False\nlr = 0.1\n")
        assert load(child) == {"model": {"type": "Net", "depth": 50, "neck": {"out": 256}},
                               "scale": [1333, 800], "name": "coco", "lr": 0.1}

    def test_deprecation_warns_and_is_removed(self):
        """_deprecation_ gives MMEngine's DeprecationWarning, attributed to the config file
        and line, and never reaches the result (also when the file is a base)."""
        path = OPENMMLAB / "reserved/deprecated.py"
        expected = (f"The config file {path} will be deprecated in the future. Please use "
                    f"new_schedule.py instead. More information can be found at https://example.org/why")
        for name in ("deprecated.py", "deprecated_child.yaml"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cfg = ADict.from_mm_config(OPENMMLAB / "reserved" / name)
            assert [(str(w.message), w.category, w.filename, w.lineno) for w in caught] == [
                (expected, DeprecationWarning, str(path), 2)]
            assert "_deprecation_" not in cfg

    def test_deprecation_of_the_wrong_type(self, tmp_path):
        """A _deprecation_ that is neither a mapping nor a message is refused."""
        with pytest.raises(ConfigFileError, match=r"c.py:2: _deprecation_ must be a mapping with "
                                                  r"'expected' and/or 'reference' \(or a message\), got int"):
            load(write(tmp_path, "c.py", "a = 1\n_deprecation_ = 3\n"))

    def test_reserved_names_below_the_top_are_data(self):
        """A nested _base_, _deprecation_ or _scope_ stays as written (as in MMEngine)."""
        cfg = load(OPENMMLAB / "reserved/nested_reserved.py")
        assert cfg["meta"] == {"_base_": "not a path", "_deprecation_": {"expected": "x"},
                               "_scope_": "mmdet"}
        assert cfg["optimizer"]["_scope_"] == "mmengine"

    def test_package_bases_get_a_scope(self, tmp_path, monkeypatch):
        """`pkg::path` reads <pkg>/.mim/configs/path of an installed package without
        importing it, and its outermost typed mappings get _scope_ (as MMEngine does)."""
        pkg = tmp_path / "site" / "atofakepkg"
        write(pkg, "__init__.py", "raise RuntimeError('imported')\n")
        write(pkg, ".mim/configs/_base_/m.py",
              "model = dict(type='Net', head=dict(type='Head'))\nopt = dict(lr=1)\n"
              "hooks = [dict(type='A'), dict(type='B', _scope_='other')]\n")
        write(pkg, ".mim/configs/net/net.py", "_base_ = '../_base_/m.py'\nmodel = dict(depth=1)\n")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        child = write(tmp_path, "c.py", "_base_ = 'atofakepkg::net/net.py'\nopt = dict(lr=2)\n")
        cfg = load(child)
        assert cfg["model"] == {"type": "Net", "head": {"type": "Head"}, "depth": 1, "_scope_": "atofakepkg"}
        assert cfg["opt"] == {"lr": 2}
        assert cfg["hooks"] == [{"type": "A", "_scope_": "atofakepkg"}, {"type": "B", "_scope_": "other"}]
        assert "atofakepkg" not in sys.modules

    @pytest.mark.parametrize("entry, message", [
        ("ato_no_such_pkg::a/b.py", r"_base_ entry 'ato_no_such_pkg::a/b.py': package "
                                    r"'ato_no_such_pkg' is not installed \(pip install it to use its configs\)"),
        ("pytest::nope/x.py", r"_base_ entry 'pytest::nope/x.py': .*/pytest/.mim/configs/nope/x.py does not exist"),
        ("a::b::c.py", r"_base_ entry 'a::b::c.py': expected 'package::path/to/config.py'"),
        ("./missing", r"c.py: _base_ entry './missing': .*/missing does not exist \(no file extension: add .py\?\)"),
        ("../x/missing.py", r"c.py: _base_ entry '../x/missing.py': .*/x/missing.py does not exist$"),
    ])
    def test_base_errors(self, tmp_path, entry, message):
        """A base that cannot be found names the naming file, the entry and the path tried
        (the MMDetection 3.3 release has such configs: MMEngine fails on them too)."""
        with pytest.raises(ConfigFileError, match=message):
            load(write(tmp_path, "c.py", f"_base_ = '{entry}'\n"))


class TestTemplates:
    def test_unset_environment_variable_without_default(self, tmp_path, monkeypatch):
        """{{$NAME:}} with NAME unset is refused with file and line (MMEngine raises a
        KeyError); with a default or a set variable it is replaced."""
        monkeypatch.delenv("ATO_TEST_UNSET", raising=False)
        path = write(tmp_path, "c.py", "a = 1\nroot = '{{$ATO_TEST_UNSET:}}/data'\n")
        with pytest.raises(ConfigFileError, match=r"c.py:2: \{\{\$ATO_TEST_UNSET:\}\}: environment "
                                                  r"variable 'ATO_TEST_UNSET' is not set and the "
                                                  r"template gives no default"):
            load(path)
        monkeypatch.setenv("ATO_TEST_UNSET", "/mnt")
        assert load(path)["root"] == "/mnt/data"
        path = write(tmp_path, "d.yaml", "n: {{'$ATO_TEST_UNSET_TOO:80'}}\n")
        assert load(path)["n"] == 80


class TestImports:
    def test_third_party_imports_are_not_run(self):
        """A module outside the standard library is never imported: imported names are
        not config values, one used as a value is its dotted path (as in MMEngine)."""
        cfg = load(OPENMMLAB / "imports/third_party.py")
        assert cfg == {"optimizer": {"type": "ato_not_installed.optim.SGD", "lr": 0.1},
                       "hooks": [{"type": "ato_not_installed_either.hooks.Logger"}]}
        assert "ato_not_installed" not in sys.modules

    def test_chain_through_a_file_with_third_party_imports(self):
        """A child whose base imports a third-party module loads (MMEngine refuses the
        chain: its lazy-import mode cannot be mixed with _base_; MMPretrain 1.2's RepLKNet
        configs are such chains)."""
        child = OPENMMLAB / "mmpretrain-1.2/replknet_child.py"
        cfg = load(child)
        assert cfg["model"]["backbone"] == {"type": "RepLKNet", "arch": "31B", "out_indices": [3]}
        assert cfg["model"]["head"]["num_classes"] == 10 and "build_classifier" not in cfg

    def test_standard_library_imports_run(self, tmp_path):
        """Standard-library imports are real; the modules are not config values."""
        path = write(tmp_path, "c.py", "import os.path as osp\nfrom math import pi\n"
                                       "work_dir = osp.join('a', 'b')\nangle = pi / 2\n")
        assert load(path) == {"work_dir": "a/b", "angle": 3.141592653589793 / 2, "pi": 3.141592653589793}

    @pytest.mark.parametrize("text, message", [
        ("from torch.optim import SGD\n\nopt = SGD(lr=1)\n",
         r"c.py:3: TypeError: torch.optim.SGD cannot be called in a config: Ato reads configs "
         r"without importing modules outside the standard library \(as MMEngine's lazy import\); "
         r"as a value it stands for the text 'torch.optim.SGD'"),
        ("from torch.optim import *\n",
         r"c.py:1: from torch.optim import \*: a config can import only named objects from a "
         r"module outside the standard library"),
        ("from .._base_.models import *\n",
         r"c.py:1: relative import: MMEngine's pure-Python configs \(`with read_base\(\): from "
         r".._base_ import ...`\) are not supported; name the bases in _base_"),
    ])
    def test_what_cannot_work_without_importing(self, tmp_path, text, message):
        """Calling a name that was not imported, star and relative imports are refused
        with file and line."""
        with pytest.raises(ConfigFileError, match=message):
            load(write(tmp_path, "c.py", text))


def test_missing_primary_config_is_an_ato_error(tmp_path):
    """A missing OpenMMLab config is ConfigFileNotFoundError (an Ato error and a
    FileNotFoundError) naming the path."""
    from ato.adict import ADict
    from ato.errors import AtoError

    with pytest.raises(FileNotFoundError) as info:
        ADict.from_mm_config(tmp_path / "none.py")
    assert isinstance(info.value, AtoError)
    assert str(info.value) == f"{tmp_path / 'none.py'}: config file does not exist"
