"""``ato.tracking.secrets``: every password inside a URL of a config is masked, and the
masking never raises on, nor changes the type or shape of, a value a config can hold."""

from __future__ import annotations

import enum
import json
from collections import Counter, OrderedDict, UserDict, UserList, defaultdict, deque, namedtuple
from types import MappingProxyType
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ato.adict import ADict
from ato.tracking.secrets import hide_passwords, without_passwords

PG = "postgresql://bob:hunter2@db:5432/x"
PG_MASKED = "postgresql://bob:***@db:5432/x"

Endpoint = namedtuple("Endpoint", "name url")


class Typed(NamedTuple):
    url: str
    retries: int = 3


class Pair(tuple):
    """A tuple subclass built as ``Pair(a, b)``, not from one iterable."""

    def __new__(cls, a, b):
        return super().__new__(cls, (a, b))


class Tagged(dict):
    """A dict subclass whose constructor takes a required extra argument."""

    def __init__(self, tag, *args):
        super().__init__(*args)
        self.tag = tag


class Fixed(list):
    """A list subclass that cannot be built from an iterable at all."""

    def __init__(self):
        super().__init__()


class Backend(str, enum.Enum):
    LOCAL = "sqlite:///runs.db"
    REMOTE = "postgresql://svc:topsecret@db/x"


def no_password_left(value) -> bool:
    return "hunter2" not in repr(value) and "topsecret" not in repr(value)


def test_several_urls_in_one_string_are_each_masked_and_the_rest_kept():
    text = f"primary {PG}, replica mysql+pymysql://u:p%40ss@h/d; cache redis://:tok@r:6379/0"
    assert hide_passwords(text) == (
        f"primary {PG_MASKED}, replica mysql+pymysql://u:***@h/d; cache redis://:***@r:6379/0")
    for kept in ("me@example.com", "sqlite:///a@b.db", "ssh://user@host/path", ""):
        assert without_passwords(kept) is kept


@pytest.mark.parametrize("url, masked", [
    ("http://u:pa@ss@h/", "http://u:***@h/"),          # a raw '@' in the password
    ("postgresql://u:a@b@c@db:5432/x", "postgresql://u:***@db:5432/x"),
    ("postgresql://u:p@h?opt=a@b", "postgresql://u:***@h?opt=a@b"),  # '@' after the host
    ("s3://key:sec@bucket/dir@2/file", "s3://key:***@bucket/dir@2/file"),
])
def test_the_password_runs_to_the_last_at_before_the_host(url, masked):
    """A password holding a raw '@' was masked only up to it ('http://u:***@ss@h/' showed
    'ss'): the user information ends at the authority's last '@'."""
    assert hide_passwords(url) == masked


def test_bytes_and_bytearray_are_masked_and_keep_their_type():
    masked = without_passwords(PG.encode() + b" and amqp://guest:guest@mq//")
    assert masked == PG_MASKED.encode() + b" and amqp://guest:***@mq//"
    assert type(masked) is bytes
    array = without_passwords(bytearray(PG.encode()))
    assert type(array) is bytearray and array == bytearray(PG_MASKED.encode())
    binary = bytes(range(256))  # not text at all: kept as it is
    assert without_passwords(binary) is binary


def test_namedtuples_keep_their_type_fields_and_order():
    masked = without_passwords(Endpoint("db", PG))
    assert type(masked) is Endpoint and masked == Endpoint("db", PG_MASKED)
    typed = without_passwords([Typed(PG), Typed("sqlite:///x.db", 5)])
    assert typed == [Typed(PG_MASKED), Typed("sqlite:///x.db", 5)]
    assert all(type(t) is Typed for t in typed)


def test_every_builtin_container_keeps_its_type_and_shape():
    config = {
        "list": [PG, 1, None],
        "tuple": (PG, 2.5),
        "set": {PG, "plain"},
        "frozen": frozenset({PG}),
        "deque": deque([PG, "x"], maxlen=5),
        "ordered": OrderedDict([("b", PG), ("a", 1)]),
        "default": defaultdict(list, {"k": [PG]}),
        "counter": Counter({PG: 2}),
        "proxy": MappingProxyType({"url": PG}),
        "userdict": UserDict({"url": PG}),
        "userlist": UserList([PG]),
        "empty": ((), [], {}, set(), frozenset()),
    }
    masked = without_passwords(config)
    assert no_password_left(masked)
    for key, original in config.items():
        assert type(masked[key]) is type(original), key
        assert len(masked[key]) == len(original), key
    assert masked["set"] == {PG_MASKED, "plain"}
    assert masked["frozen"] == frozenset({PG_MASKED})
    assert masked["deque"].maxlen == 5 and list(masked["deque"]) == [PG_MASKED, "x"]
    assert list(masked["ordered"]) == ["b", "a"]
    assert masked["default"].default_factory is list and masked["default"]["k"] == [PG_MASKED]
    assert masked["counter"] == Counter({PG_MASKED: 2})
    assert masked["proxy"]["url"] == PG_MASKED
    assert masked["empty"] == ((), [], {}, set(), frozenset())
    # the input is not touched
    assert config["list"][0] == PG and config["default"]["k"] == [PG]


def test_an_adict_stays_an_adict_with_its_factory_and_frozen_flag():
    cfg = ADict(experiment=ADict(sql=ADict(db_path=PG)), lr=0.1, tags=[PG, "x"])
    cfg.freeze()
    masked = without_passwords(cfg)
    assert type(masked) is ADict and type(masked.experiment.sql) is ADict
    assert masked.experiment.sql.db_path == PG_MASKED
    assert masked.tags == [PG_MASKED, "x"] and masked.lr == 0.1
    assert masked.frozen and masked.experiment.sql.frozen
    assert cfg.experiment.sql.db_path == PG and not cfg.defrost().frozen
    auto = ADict.auto(url=PG)
    masked_auto = without_passwords(auto)
    assert masked_auto.url == PG_MASKED
    assert type(masked_auto.missing.deeper) is ADict  # the auto-nesting factory came along


def test_a_type_that_cannot_be_rebuilt_falls_back_to_its_plain_equivalent():
    masked = without_passwords({"pair": Pair(PG, 1), "tagged": Tagged("t", {"url": PG}),
                                "fixed": _fixed_with(PG)})
    # Pair(a, b) is rebuilt with one argument per item
    assert type(masked["pair"]) is Pair and masked["pair"] == (PG_MASKED, 1)
    assert type(masked["tagged"]) is dict and masked["tagged"] == {"url": PG_MASKED}
    assert type(masked["fixed"]) is list and masked["fixed"] == [PG_MASKED]
    # with nothing to mask, such a value is returned as it is (no change of type)
    untouched = Tagged("t", {"url": "sqlite:///x.db"})
    assert without_passwords(untouched) is untouched
    assert without_passwords(range(3)) == range(3)


def _fixed_with(*items):
    fixed = Fixed()
    fixed.extend(items)
    return fixed


def test_str_subclasses_keep_their_type_or_become_plain_strings():
    from collections import UserString

    masked = without_passwords([UserString(PG)])
    assert type(masked[0]) is UserString and masked[0] == PG_MASKED
    assert without_passwords(Backend.LOCAL) is Backend.LOCAL
    masked = without_passwords({"backend": Backend.REMOTE})
    assert masked == {"backend": "postgresql://svc:***@db/x"}
    assert type(masked["backend"]) is str


def test_string_keys_are_masked_too():
    masked = without_passwords({PG: 1, (PG, 2): "tuple key", "plain": PG})
    assert masked == {PG_MASKED: 1, (PG_MASKED, 2): "tuple key", "plain": PG_MASKED}


def test_a_cyclic_config_keeps_its_cycle_and_shared_values_stay_shared():
    shared = [PG]
    cfg = {"a": shared, "b": shared}
    cfg["self"] = cfg
    masked = without_passwords(cfg)
    assert masked["self"] is masked
    assert masked["a"] is masked["b"] and masked["a"] == [PG_MASKED]
    loop = [PG]
    loop.append(loop)
    masked_loop = without_passwords(loop)
    assert masked_loop[0] == PG_MASKED and masked_loop[1] is masked_loop


def test_other_objects_are_returned_as_they_are():
    marker = object()
    for value in (None, True, 3, 2.5, float("nan"), marker, b"", memoryview(b"x")):
        assert without_passwords(value) is value


@pytest.mark.parametrize("wrap", [list, tuple, set, frozenset, deque,
                                  lambda xs: {str(i): x for i, x in enumerate(xs)},
                                  lambda xs: ADict({str(i): x for i, x in enumerate(xs)}),
                                  lambda xs: Endpoint(xs[0] if xs else "", list(xs))])
def test_nested_mixes_are_masked_at_every_depth(wrap):
    inner = [PG, (PG.encode(), frozenset({PG})), Endpoint("e", (PG, 1))]  # hashable, for sets
    masked = without_passwords({"outer": wrap(inner), "deep": [{"k": deque([wrap(inner)])}]})
    assert no_password_left(masked)
    assert type(masked["outer"]) is type(wrap(inner))
    assert type(masked["deep"][0]["k"][0]) is type(wrap(inner))


urls = st.builds(lambda user, pw, host: f"postgresql://{user}:{pw}@{host}/db",
                 st.text("abc", max_size=3), st.text("hunter2", min_size=1, max_size=7)
                 .map(lambda s: "hunter2" + s), st.sampled_from(["db", "10.0.0.1:5432"]))
leaves = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
                   urls, urls.map(str.encode))
configs = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=3), children, max_size=3),
        st.dictionaries(st.text(max_size=3), children, max_size=3).map(ADict),
        st.tuples(st.text(max_size=3), children).map(lambda t: Endpoint(*t)),
        st.frozensets(st.one_of(urls, st.integers()), max_size=3),
    ),
    max_leaves=12,
)


def _shape(value):
    """The container types and sizes of ``value``, leaves reduced to their type."""
    if isinstance(value, (dict, ADict)):
        return (type(value), tuple(sorted(repr(_shape(v)) for v in value.values())))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_shape(v) for v in value))
    if isinstance(value, frozenset):
        return (type(value), len(value))
    return type(value)


@settings(max_examples=150, deadline=None)
@given(configs)
def test_any_config_is_masked_without_error_and_keeps_its_shape(config):
    masked = without_passwords(config)
    assert no_password_left(masked)
    if not isinstance(config, frozenset):  # members differing only by password may merge
        assert _shape(masked) == _shape(config) or _merged_members(config)
    json.dumps(masked, default=repr)  # still something a tracker can write


def _merged_members(config) -> bool:
    """Whether ``config`` holds a frozenset of URLs that differ only in their password."""
    if isinstance(config, frozenset):
        return len(without_passwords(config)) != len(config)
    if isinstance(config, (dict, ADict)):
        return any(_merged_members(v) for v in config.values())
    if isinstance(config, (list, tuple)):
        return any(_merged_members(v) for v in config)
    return False
