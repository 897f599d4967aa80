"""The interop cases shared by the default test run (against stored expected outputs) and
the ``nox -s interop`` session (against mmengine and hydra-core themselves)."""

from __future__ import annotations

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPENMMLAB = HERE / "fixtures" / "openmmlab"
EXPECTED = HERE / "expected"
CORPORA = HERE.parents[2] / "shared" / "corpora" / "hydra"
if not CORPORA.exists():  # a checkout without ../shared beside it
    CORPORA = Path(os.environ.get("ATO_CORPORA", "/nonexistent"))

MM_CASES = ["detection/faster_rcnn_r101.py", "detection/adam_child.py", "detection/base_refs.py",
            "detection/yaml_child.yaml", "detection/three_levels.py",
            "_base_/default_runtime.py", "_base_/datasets/coco.yaml",
            # every statement Python allows on the _base_ namespace
            "namespace/del_after_alias.py", "namespace/item_pop_augmented.py",
            "namespace/iterate.py", "namespace/nested_write.py",
            "namespace/yaml_braces_in_py_base.py", "namespace/aliases.py",
            "namespace/methods.py",
            # the plain-Python twin of braces/expressions.py (which MMEngine gets wrong)
            "braces/expressions_plain.py",
            # reserved keys MMEngine consumes or keeps
            "reserved/deprecated.py", "reserved/deprecated_child.yaml",
            "reserved/nested_reserved.py",
            # imports of modules outside the standard library (MMEngine's lazy import)
            "imports/third_party.py",
            # real configs of the MMDetection 3.3 release (fixtures/openmmlab/mmdet-3.3/README.md)
            "mmdet-3.3/qdtrack/qdtrack_faster-rcnn_r50_fpn_4e_base.py",
            "mmdet-3.3/bytetrack/bytetrack_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py",
            "mmdet-3.3/strongsort/yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py",
            "mmdet-3.3/detr/detr_r50_8xb2-150e_coco.py",
            "mmpretrain-1.2/_base_/models/replknet-31B_in1k.py"]
MM_ENV = {"ATO_TEST_DATA_ROOT": "/datasets/coco/"}

LIGHTNING = "lightning-hydra-template/configs"
EX = "hydra/examples"


def _tree_cases():
    """Every top-level config of every tree, with its defaults."""
    cases = []
    for conf in sorted(CORPORA.glob("**/conf")) + sorted(CORPORA.glob("**/configs")):
        rel = conf.relative_to(CORPORA).as_posix()
        for top in sorted(conf.glob("*.yaml")):
            cases.append((rel, top.stem, {}))
    return cases


SELECTIONS = [
    (LIGHTNING, "train", {"experiment": "example"}),
    (LIGHTNING, "train", {"debug": "default"}),
    (LIGHTNING, "train", {"debug": "overfit", "logger": "csv"}),
    (LIGHTNING, "train", {"trainer": "ddp", "logger": "many_loggers"}),
    (LIGHTNING, "train", {"callbacks": "none", "trainer": "gpu"}),
    (LIGHTNING, "train", {"experiment": "example", "debug": "fdr", "logger": "tensorboard"}),
    (LIGHTNING, "eval", {"trainer": "cpu", "logger": "wandb"}),
    (f"{EX}/tutorials/basic/your_first_hydra_app/6_composition/conf", "config",
     {"db": "postgresql", "ui": "view", "schema": "support"}),
    (f"{EX}/tutorials/basic/your_first_hydra_app/4_config_groups/conf", "config", {"db": "mysql"}),
    (f"{EX}/patterns/configuring_experiments/conf", "config", {"experiment": "aplite"}),
    (f"{EX}/patterns/configuring_experiments/conf", "config", {"experiment": "nglite"}),
    (f"{EX}/patterns/extending_configs/conf", "config", {"db": "mysql_extending_from_this_group"}),
    (f"{EX}/patterns/extending_configs/conf", "config", {"db": "mysql_extending_from_another_group"}),
    (f"{EX}/patterns/multi-select/conf", "config", {"server/site": ["amazon", "fb"]}),
    (f"{EX}/advanced/package_overrides/conf", "two_packages", {"db@destination": "postgresql"}),
    (f"{EX}/advanced/nested_defaults_list/conf", "config", {"server/db": "sqlite"}),
]


def hydra_cases():
    return _tree_cases() + SELECTIONS


def case_id(root, name, select) -> str:
    sel = "-".join(f"{k}={'+'.join(v) if isinstance(v, list) else v}" for k, v in select.items())
    return f"{root}/{name}" + (f"[{sel}]" if sel else "")


def normalise(value):
    """Tuples become lists (ADict stores lists) so results compare by content."""
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def expected_file(kind: str) -> Path:
    return EXPECTED / f"{kind}.json"


def load_expected(kind: str) -> dict:
    return json.loads(expected_file(kind).read_text())


# --------------------------------------------------------------------------- interpolation
# `compose_hierarchy(resolve=True)` against `hydra.compose` + `OmegaConf.to_container(
# resolve=True)` (hydra-core 1.3 / omegaconf 2.3): each case is a primary config of its own.
# Deliberate differences (int keys found by `${m.1}`, non-ASCII letters in unquoted resolver
# arguments) are tested in test_hydra_interpolation.py, not here.
#: Environment of the interpolation cases (set, and unset, by both sides).
INTERPOLATION_ENV = {
    'ATO_TEST_HOME': '/home/ato',
    'ATO_TEST_LIST': '[1, 2.5, x]',
    'ATO_TEST_NAME': 'ATO_TEST_HOME',
    'ATO_TEST_NUM': '42',
}
INTERPOLATION_UNSET = ['ATO_TEST_UNSET', 'ATO_TEST_UNSET_2']

#: name → primary config text; composed with resolve=True by Hydra and by Ato.
INTERPOLATION_CASES = {
    'absolute': 'a: 1\nb: ${a}\n',
    'nested_absolute': 'paths: {root: /data}\nckpt: ${paths.root}/ckpt\n',
    'relative_sibling': 'm:\n  x: 1\n  y: ${.x}\n',
    'relative_up': 'm:\n  x: 1\n  n:\n    y: ${..x}\n',
    'relative_up_two': 'top: 5\nm:\n  n:\n    y: ${...top}\n',
    'relative_top_from_root': 'a: 3\nb: ${.a}\n',
    'list_index': 'l: [10, 20]\na: ${l.1}\nb: ${l[0]}\nc: ${l.0}-${l.1}\n',
    'brackets': 'm: {x: {y: 7}}\na: ${m[x].y}\nb: ${m[x][y]}\n',
    'whole_value_types': (
        'f: 0.5\n'
        'b: true\n'
        'n: null\n'
        'd: {k: v}\n'
        'l: [1, 2]\n'
        'wf: ${f}\n'
        'wb: ${b}\n'
        'wn: ${n}\n'
        'wd: ${d}\n'
        'wl: ${l}\n'
    ),
    'concat': (
        'name: r50\n'
        'n: 1\n'
        'run: exp_${name}_${n}_${f}\n'
        'f: 0.5\n'
        'b: x${b2}\n'
        'b2: true\n'
        'none: v${nn}\n'
        'nn: null\n'
    ),
    'concat_container': "d: {k: v}\nl: [1, 2]\ns: 'd=${d} l=${l}'\n",
    'escape_interpolation': 'a: 1\nb: \\${a}\nc: x\\${a}y\n',
    'escape_backslash_before': "a: 1\nb: '\\\\${a}'\nc: 'C:\\\\tmp\\\\${a}'\n",
    'lone_backslash': "a: 1\nb: 'x\\y'\nc: 'x\\\\y'\nd: 'end\\'\n",
    'dollar_literal': 'a: price $5\nb: $\nd: ab$c\ne: $$\nf: ${a}$\n',
    'lone_open': "c: '${'\n",
    'nested_interpolation': 'key: a\na: 1\nb: ${${key}}\nm: {a: 2}\nc: ${m.${key}}\n',
    'nested_env': (
        'which: ATO_TEST_HOME\n'
        'home: ${oc.env:${which}}\n'
        'home2: ${oc.env:${oc.env:ATO_TEST_NAME}}\n'
    ),
    'env_set': (
        'data: ${oc.env:ATO_TEST_HOME}/data\n'
        'num: ${oc.env:ATO_TEST_NUM}\n'
        'list: ${oc.env:ATO_TEST_LIST}\n'
    ),
    'env_unset': 'data: ${oc.env:ATO_TEST_UNSET}/data\n',
    'env_unset_whole': 'data: ${oc.env:ATO_TEST_UNSET}\n',
    'env_default_null': 'a: ${oc.env:ATO_TEST_UNSET,null}\nb: x_${oc.env:ATO_TEST_UNSET,null}\n',
    'env_default_empty': (
        "a: ${oc.env:ATO_TEST_UNSET,''}\n"
        'b: ${oc.env:ATO_TEST_UNSET,}\n'
        'c: ${oc.env:ATO_TEST_UNSET,""}\n'
    ),
    'env_default_comma': (
        "a: ${oc.env:ATO_TEST_UNSET,'x,y'}\n"
        'b: ${oc.env:ATO_TEST_UNSET,"a, b"}\n'
    ),
    'env_default_unquoted': (
        'a: ${oc.env:ATO_TEST_UNSET,/tmp/x}\n'
        'b: ${oc.env:ATO_TEST_UNSET, spaced words }\n'
        'c: ${oc.env:ATO_TEST_UNSET,abc}\n'
    ),
    'env_default_number': 'a: ${oc.env:ATO_TEST_UNSET,5}\n',
    'env_default_quoted_number': "a: ${oc.env:ATO_TEST_UNSET,'5'}\n",
    'env_default_interpolation': (
        'd: /fallback\n'
        'a: ${oc.env:ATO_TEST_UNSET,${d}}\n'
        "b: ${oc.env:ATO_TEST_UNSET,'${d}/x'}\n"
    ),
    'env_default_escaped_quote': "a: ${oc.env:ATO_TEST_UNSET,'it\\'s'}\n",
    'env_set_ignores_default': 'a: ${oc.env:ATO_TEST_HOME,/other}\n',
    'env_whitespace': 'a: "${oc.env: ATO_TEST_UNSET , \'d\' }"\nb: ${ oc.env:ATO_TEST_HOME}\n',
    'decode': (
        'a: "${oc.decode:\'{x: 1, y: [1, 2]}\'}"\n'
        'b: ${oc.decode:"3.5"}\n'
        'c: ${oc.decode:null}\n'
        'd: ${oc.decode:${oc.env:ATO_TEST_LIST}}\n'
        "e: ${oc.decode:'1_000'}\n"
        "f: ${oc.decode:'true'}\n"
        "g: ${oc.decode:'text'}\n"
    ),
    'decode_env_number': 'n: ${oc.decode:${oc.env:ATO_TEST_NUM}}\n',
    'decode_not_string': 'a: ${oc.decode:5}\n',
    'select': (
        'a: 1\n'
        'm: {x: 2}\n'
        's1: ${oc.select:a}\n'
        's2: ${oc.select:missing.key,fallback}\n'
        's3: ${oc.select:missing}\n'
        's4: ${oc.select:m.x,0}\n'
        's5: ${oc.select:nope,null}\n'
        's6: ${oc.select:nope,[1, 2]}\n'
        's7: "${oc.select:nope,{k: 1}}"\n'
        's8: ${oc.select:nope,true}\n'
        's9: ${oc.select:nope,1e-3}\n'
        's10: ${oc.select:nope,-3}\n'
    ),
    'select_relative': "m: {x: 2, y: '${oc.select:.x,0}', z: '${oc.select:.w,9}'}\n",
    'select_missing_value': 'a: ???\nb: ${oc.select:a,default}\n',
    'create': 'a: "${oc.create:{x: 1, y: [2]}}"\nb: "${oc.create:\'k: v\'}"\n',
    'dict_keys_values': 'm: {a: 1, b: 2}\nk: ${oc.dict.keys:m}\nv: ${oc.dict.values:m}\n',
    'cycle_two': 'a: ${b}\nb: ${a}\n',
    'cycle_self': 'a: ${a}\n',
    'cycle_three_concat': 'a: x_${b}\nb: ${c}\nc: ${a}\n',
    'cycle_through_container': 'a:\n  x: ${b}\nb: ${a}\n',
    'missing_key': 'paths: {root: /data}\nckpt: ${paths.rot}/ckpt\n',
    'missing_top': 'x: ${nothere}\n',
    'missing_relative': 'm:\n  x: ${.nope}\n',
    'missing_index': 'l: [1]\nx: ${l.3}\n',
    'missing_value': 'a: ???\nb: ${a}\n',
    'unknown_resolver': 'a: ${foo:bar}\n',
    'unknown_resolver_ns': 'a: ${my.res:1,2}\n',
    'unterminated': 'a: ${b\nb: 1\n',
    'bad_key_char': 'a: ${b c}\n',
    'chain': 'a: ${b}\nb: ${c}\nc: 3\n',
    'in_list': "a: 1\nl: ['${a}', 'x_${a}', ['${a}']]\n",
    'list_of_dicts_relative': "l: [{x: 1, y: '${.x}'}]\n",
    'dash_key': 'my-key: 1\nv: ${my-key}\n',
    'container_with_interpolations': "a: {x: '${c}', y: 'p_${c}'}\nb: ${a}\nc: 1\n",
    'whitespace_in_node': 'a: 1\nb: ${ a }\nc: ${a }\n',
    'empty_interpolation': 'a: ${}\n',
    'resolver_quoted_with_interp': "n: r50\na: ${oc.select:nope,'pre_${n}'}\n",
    'escapes_in_args': (
        'a: ${oc.select:nope,a\\,b}\n'
        'b: ${oc.select:nope,x\\ y}\n'
        "c: ${oc.select:nope,'q\\\\'}\n"
    ),
    'interp_to_escaped': 'a: \\${x}\nb: ${a}\n',
    'env_in_concat_types': 'a: ${oc.env:ATO_TEST_NUM}1\nb: ${oc.decode:${oc.env:ATO_TEST_NUM}}\n',
    'resolver_no_args': 'a: ${oc.env:}\n',
    'deep_relative_too_far': 'a: ${...x}\n',
    'select_interp_key': 'k: a\na: 5\nv: ${oc.select:${k},0}\n',
    'deprecated': 'old: 1\nnew: ${oc.deprecated:old}\n',
    '3bs': 'a: 1\nb: \\\\\\${a}\n',
    '4bs': 'a: 1\nb: \\\\\\\\${a}\n',
    'trail2': 'a: x\\\\\n',
    'q_bs_mid': "a: ${oc.select:n,'a\\\\b'}\n",
    'q_bs_single': "a: ${oc.select:n,'a\\b'}\n",
    'q_interp_int': "n: 1\na: ${oc.select:x,'${n}'}\n",
    'dq': 'a: ${oc.select:x,"it\'s"}\n',
    'dec_ws': "a: ${oc.decode:' 1 '}\n",
    'dec_1.': "a: ${oc.decode:'1.'}\n",
    'dec_01': "a: ${oc.decode:'01'}\n",
    'dec_dictint': "a: '${oc.decode:''{1: a, true: b, null: c, 1.5: d}''}'\n",
    'dec_1a': "a: ${oc.decode:'1a'}\n",
    'dec_bad': "a: ${oc.decode:'a,b'}\n",
    'dec_paren': "a: ${oc.decode:'f(x)'}\n",
    'dec_hash': "a: ${oc.decode:'#x'}\n",
    'dec_ab': "a: ${oc.decode:'a b'}\n",
    'dec_empty': "a: ${oc.decode:''}\n",
    'dec_list_empty_elem': "a: ${oc.decode:'[1,,2]'}\n",
    'dec_list_trailing': "a: ${oc.decode:'[1,2,]'}\n",
    'dec_nested_q': 'a: ${oc.decode:\'"x"\'}\n',
    'dec_colon': "a: ${oc.decode:'a:b'}\n",
    'dec_esc': "a: ${oc.decode:'a\\\\,b'}\n",
    'dec_1e3': "a: ${oc.decode:'1e3'}\n",
    'dec_+1': "a: ${oc.decode:'+1'}\n",
    'dec_TRUE': "a: ${oc.decode:'TRUE'}\n",
    'dec_Null': "a: ${oc.decode:'Null'}\n",
    'dec_0x': "a: ${oc.decode:'0x10'}\n",
    'dec_1_000.5': "a: ${oc.decode:'1_000.5'}\n",
    'dec_eq': "a: ${oc.decode:'a=b'}\n",
    'sel_empty_args': 'a: ${oc.select:x,}\n',
    'args_commas': 'a: ${oc.dict.keys:m}\nm: {}\n',
    'rel_nope2': 'm:\n  n:\n    x: ${..nope}\n',
    'key_dollar': 'a$b: 1\nc: ${a$b}\n',
    'key_slash': 'a/b: 1\nc: ${a/b}\n',
    'nested_key_dots': 'k: m.a\nm:\n  a: 3\nc: ${${k}}\n',
    'list_neg': 'l:\n- 1\n- 2\nc: ${l.-1}\n',
    'list_bracket_str': "m:\n  x: 1\nc: ${m['x']}\n",
    'res_ns_interp': 'k: env\nc: ${oc.${k}:ATO_TEST_HOME}\n',
    'two_whole': 'a: 1\nc: ${a}${a}\n',
    'space_whole': "a: 1\nc: ' ${a}'\n",
    'unicode_key': '"\\xE9": 1\nc: "${\\xE9}"\n',
    'dict_in_args_interp': "a: 1\nc: '${oc.select:x,{k: ${a}}}'\n",
    'select_list_default': "c: ${oc.select:x,[a, 'b', ${oc.env:ATO_TEST_HOME}]}\n",
    'env_nonstr_key': 'c: ${oc.env:42,d}\n',
    'to_parent_direct': 'a:\n  x: ${a}\n',
    'to_parent_rel': 'a:\n  x: ${..a}\n',
    'deprecated_new': 'old: ${oc.deprecated:new}\nnew: 2\n',
    'env_default_list': 'c: ${oc.env:ATO_TEST_UNSET,[1,2]}\n',
    'missing_in_select_default': 'c: ${oc.select:x,${nope}}\n',
    'interp_in_key_missing': 'c: ${m.${nope}}\n',
    'bool_concat_arg': 'c: ${oc.select:x,true false}\n',
    'colon_after_key': 'a:\n  b: 1\nc: ${a.b:}\n',
    'chain_err': 'a: ${b}\nb: ${nope}\n',
    'through_interp': 'b:\n  x: 5\na: ${b}\nc: ${a.x}\n',
    'list_key_disp': 'l:\n- y: ${nope}\n',
    'missing_chain': 'a: ???\nb: ${c}\nc: ${a}\n',
    'dec_interp': "a: 1\nc: ${oc.decode:'${a}'}\n",
    'dec_str_interp': "a: 1\nc: ${oc.decode:'x_${a}'}\n",
    'sel_rel_list': 'l:\n- 1\n- 2\nc: ${oc.select:l.5,d}\n',
    'dict_keys_rel': 'm:\n  a: 1\n  k: ${oc.dict.keys:.}\n',
    'dict_values_missing': 'c: ${oc.dict.values:nope}\n',
    'keys_of_list': 'l:\n- 1\nc: ${oc.dict.keys:l}\n',
    'create_list': 'c: ${oc.create:[1,2]}\n',
    'resolver_arg_dict_key_interp': "c: '${oc.select:x,{a b: 1}}'\n",
    'inter_key_ws': 'a:\n  b: 1\nc: ${a .b}\n',
    'deep_rel': 'm:\n  n:\n    o:\n      y: ${....top}\ntop: 1\n',
    'select_abs_in_nested': 'm:\n  x: ${oc.select:top,0}\ntop: 7\n',
    'ref_whole_list_elem_interp': 'l:\n- ${a}\n- 2\na: 1\nc: ${l}\n',
    'deprecated_msg': "new: 1\nold: ${oc.deprecated:new,'use new!'}\n",
}


def interpolation_case_id(name: str) -> str:
    return f"interpolation/{name}"


def write_interpolation_case(base: Path, name: str) -> Path:
    """``base/<name>/config.yaml`` holding the case; returns the directory."""
    root = base / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(INTERPOLATION_CASES[name], encoding="utf-8")
    return root


class interpolation_env:
    """Set INTERPOLATION_ENV and remove INTERPOLATION_UNSET for the block, then restore."""

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in [*INTERPOLATION_ENV, *INTERPOLATION_UNSET]}
        os.environ.update(INTERPOLATION_ENV)
        for k in INTERPOLATION_UNSET:
            os.environ.pop(k, None)
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def error_record(e: BaseException) -> dict:
    """How a failed case is stored: the exception's class names, message and key (Ato's
    ``key`` attribute, or OmegaConf's ``full_key:`` line)."""
    while type(e).__name__ == "ConfigCompositionException" and e.__cause__ is not None:
        e = e.__cause__  # Hydra checks the grammar while composing
    lines = str(e).splitlines() or [""]
    key = getattr(e, "key", None)
    if not isinstance(key, str):
        found = [line.split("full_key:", 1)[1].strip() for line in lines if "full_key:" in line]
        key = found[0] if found else None
    return {"__error__": type(e).__name__, "classes": [c.__name__ for c in type(e).__mro__],
            "message": lines[0], "key": key}


def same_result(theirs, ours) -> bool:
    """Equal values; for errors: Ato's exception is (a subclass of) the one OmegaConf
    raised, its message starts with OmegaConf's first line (ANTLR's wording of grammar
    errors excepted) and it names the same key (Hydra shows only its last part).  Tree
    cases only need both to fail."""
    if not (isinstance(theirs, dict) and "__error__" in theirs):
        return ours == theirs
    if not (isinstance(ours, dict) and "__error__" in ours):
        return False
    if "message" not in theirs:
        return True
    if theirs["__error__"] not in ours.get("classes", [ours["__error__"]]):
        return False
    message = theirs["message"]
    if "GrammarParseError" in message:
        message = message.split(":", 1)[0]
    if theirs["__error__"] != "GrammarParseError" and \
            not ours.get("message", "").startswith(message):
        return False
    key, our_key = theirs.get("key"), ours.get("key") or ""
    return key is None or our_key == key or our_key.endswith(("." + key, "]." + key))
