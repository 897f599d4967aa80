"""Search-algorithm building blocks: :class:`HyperOpt`, :class:`GridSpaceMixIn`,
:class:`DistributedMixIn` and :class:`DistributedHyperOpt`.

Nothing here imports torch or numpy; ``torch.distributed`` is imported only by the
distributed code paths (``pip install 'ato-hyperopt[torch]'``).
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import functools
import hashlib
import io
import itertools
import math
import numbers
import os
import random
import secrets
import sys
import threading
import uuid
import warnings
from fractions import Fraction

from ato.adict import ADict
from ato.errors import AtoError, user_stacklevel
from ato.hyperopt import budgets
from ato.hyperopt import trial as continuation
from ato.hyperopt.progress import Progress
from ato.hyperopt.study import ClaimRuns, TrialRecorder, on_trial_logger, searched_values
from ato.hyperopt.workers import FAIL_FAST, NotRetried, TrialRequest, jsonable, open_shared_study
from ato.tracking.outcome import describe_exception

__all__ = ["HyperOpt", "GridSpaceMixIn", "DistributedMixIn", "DistributedHyperOpt",
           "SearchSpaceError", "SearchOptionError", "DistributedSearchError", "NaNMetricError",
           "NoSuccessfulTrialError", "StudyStoppedError", "MetricTypeError",
           "TrialRequest", "better", "succeeded", "worst_value", "process_group"]


class SearchOptionError(AtoError, ValueError):
    """An option of a search algorithm is wrong; the message names the algorithm and the
    option."""


class SearchSpaceError(AtoError, ValueError):
    """A search-space entry is malformed; the message names the parameter."""


class NaNMetricError(NotRetried, AtoError, ValueError):
    """The objective returned NaN: its trial is recorded ``failed`` with this message as
    its error, scores NaN (ranked last) and the search goes on, as for an exception named
    in ``catch``.  In a shared study ``retries`` does not run it again (what an objective
    returns is no crash)."""


class MetricTypeError(NotRetried, AtoError, TypeError):
    """The objective returned no number (None, a string, a list): its trial fails, and in
    a shared study ``retries`` does not run it again."""


class NoSuccessfulTrialError(AtoError, RuntimeError):
    """Every trial that decides a search's result failed (raised, returned NaN), so there is
    no best configuration; the message counts the failures and quotes the first errors."""


class StudyStoppedError(NoSuccessfulTrialError):
    """A shared study stopped by ``fail_fast``: its trials failed with the same error again
    and again and none completed, so every worker stops instead of running the rest (the message quotes the
    first failure, its values, and the commands to see every failure and to run them again
    after a fix)."""


class DistributedSearchError(AtoError, RuntimeError):
    """A rank failed during a distributed search; raised on every rank."""

    def __init__(self, rank: int, error: str):
        self.rank = rank
        super().__init__(f"rank {rank} failed: {error}")


def process_group():
    """``(torch.distributed, rank, world_size)`` when this process belongs to an initialised
    ``torch.distributed`` group of more than one process, else None. Never imports torch:
    a program that did not import ``torch.distributed`` has no group."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    world = dist.get_world_size()
    return (dist, dist.get_rank(), world) if world > 1 else None


def study_seed(study_id: str) -> int:
    """The seed of a study whose seed was not given: 32 bits of sha256 of its id, so every
    worker started with the same ``study_id`` makes the same proposals."""
    return int.from_bytes(hashlib.sha256(study_id.encode("utf-8")).digest()[:4], "big")


def worst_value(mode: str) -> float:
    return -math.inf if mode == "max" else math.inf


def better(mode: str):
    """Sort key: higher is better for 'max', lower for 'min'; NaN/None rank last.  A
    partial over a module-level function, so a search holding it still pickles."""
    return functools.partial(_rank, mode)


def _rank(mode: str, metric) -> float:
    if metric is None or metric != metric:
        return math.inf
    return -metric if mode == "max" else metric


def succeeded(metric) -> bool:
    """Whether a trial's metric stands for a successful trial: a number that is not NaN
    (a failed trial scores NaN). Search algorithms promote only such trials."""
    return metric is not None and metric == metric


def numeric_range(name: str, spec) -> tuple[float, float]:
    """``spec['param_range']`` as ``(start, stop)``, checked: a pair of real numbers
    (``bool`` and strings such as ``'1e-5'`` are refused).

    Raises :class:`SearchSpaceError` naming the search-space entry and the bad value.
    """
    rng = spec.get("param_range")
    if isinstance(rng, (str, bytes)) or not hasattr(rng, "__len__") or len(rng) != 2:
        raise SearchSpaceError(f"search space {name!r}: param_range must be a pair "
                               f"[start, stop], got {rng!r}")
    for value in rng:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            hint = " (a quoted number in a config file is a string; write it unquoted)" \
                if isinstance(value, str) else ""
            raise SearchSpaceError(f"search space {name!r}: param_range holds {value!r}, "
                                   f"which is not a number{hint}")
    start, stop = rng
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise SearchSpaceError(f"search space {name!r}: param_range must be finite, got "
                               f"{(start, stop)!r}")
    if start > stop:
        raise SearchSpaceError(f"search space {name!r}: param_range runs backwards "
                               f"({start!r} > {stop!r}); write it [{stop!r}, {start!r}]")
    return start, stop


#: The keys a search-space entry may have.
SPEC_KEYS = ("param_type", "param_range", "num_samples", "space_type", "base", "categories")


def param_kind(name: str, spec) -> str:
    """``FLOAT``, ``INTEGER`` or ``CATEGORY``: the checked ``param_type`` of one
    search-space entry; a ``CATEGORY`` must have a non-empty ``categories`` list.

    Raises :class:`SearchSpaceError` naming the entry and what is wrong."""
    if not hasattr(spec, "get") or spec.get("param_type") is None:
        raise SearchSpaceError(f"search space {name!r}: 'param_type' is required "
                               f"(FLOAT, INTEGER or CATEGORY)")
    unknown = sorted(str(k) for k in spec.keys() if k not in SPEC_KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], SPEC_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(SPEC_KEYS)})"
        raise SearchSpaceError(f"search space {name!r}: unknown key {unknown[0]!r}{hint}")
    kind = str(spec.get("param_type")).upper()
    if kind == "CATEGORY":
        categories = spec.get("categories")
        if isinstance(categories, (str, bytes)) or not categories \
                or not hasattr(categories, "__iter__"):
            raise SearchSpaceError(f"search space {name!r}: CATEGORY needs a non-empty "
                                   f"'categories' list, got {categories!r}")
    elif kind not in ("FLOAT", "INTEGER"):
        raise SearchSpaceError(f"search space {name!r}: param_type must be FLOAT, INTEGER or "
                               f"CATEGORY, not {spec.get('param_type')!r}")
    return kind


def check_space(name: str, spec) -> str:
    """Check one search-space entry completely and return its kind (``FLOAT``,
    ``INTEGER`` or ``CATEGORY``).  Every algorithm calls this for every entry before it
    runs anything, so a mistake is the same :class:`SearchSpaceError` whichever algorithm
    reads the space: the type, the keys, ``param_range`` (two finite numbers, low <= high,
    holding an integer for ``INTEGER``), ``num_samples`` (an int >= 1 when given: grid
    algorithms need it, samplers ignore it), ``space_type`` (``LINEAR`` or ``LOG``; a
    ``LOG`` range must be positive) and ``base`` (a finite number > 0 and != 1)."""
    kind = param_kind(name, spec)
    if kind == "CATEGORY":
        return kind
    if spec.get("param_range") is None:
        raise SearchSpaceError(f"search space {name!r}: {kind} needs 'param_range'")
    start, stop = numeric_range(name, spec)
    if kind == "INTEGER" and math.ceil(start) > math.floor(stop):
        raise SearchSpaceError(f"search space {name!r}: an INTEGER param_range must hold an "
                               f"integer, but {(start, stop)!r} holds none")
    n = spec.get("num_samples")
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral)):
        raise SearchSpaceError(f"search space {name!r}: num_samples must be an integer, "
                               f"got {n!r}")
    if n is not None and n < 1:
        raise SearchSpaceError(f"search space {name!r}: num_samples must be >= 1, got {n}")
    space = spec.get("space_type", "LINEAR")
    if not isinstance(space, str) or space.upper() not in ("LINEAR", "LOG"):
        raise SearchSpaceError(f"search space {name!r}: space_type must be LINEAR or LOG, "
                               f"not {space!r}")
    base = spec.get("base")
    if base is not None and (isinstance(base, bool) or not isinstance(base, numbers.Real)
                             or not math.isfinite(base) or base <= 0 or base == 1):
        raise SearchSpaceError(f"search space {name!r}: base must be a finite number > 0 "
                               f"and != 1, got {base!r}")
    if space.upper() == "LOG" and start <= 0:
        raise SearchSpaceError(f"search space {name!r}: a LOG range must be positive, "
                               f"got {(start, stop)!r}")
    return kind


def check_search_spaces(search_spaces) -> None:
    """:func:`check_space` for every entry of a search-space mapping."""
    for name in search_spaces.keys():
        check_space(name, search_spaces[name])


def _linspace(start: float, stop: float, n: int) -> list[float]:
    if n == 1:
        return [float(start)]
    step = (stop - start) / (n - 1)
    values = [start + i * step for i in range(n)]
    values[0], values[-1] = float(start), float(stop)
    return values


class GridSpaceMixIn:
    """Turns search spaces into a grid of configs (``prepare_distributions``).

    Each entry: ``param_type`` ``FLOAT`` / ``INTEGER`` (with ``param_range=(start, stop)``,
    ``num_samples``, ``space_type`` ``LINEAR``/``LOG`` and optional ``base``) or
    ``CATEGORY`` (with ``categories``).  A dotted name (``'optimizer.lr'``) sets a nested key.
    """

    @staticmethod
    def parameter_values(name: str, spec) -> list:
        """The grid values of one search-space entry (float64, exact endpoints)."""
        kind = check_space(name, spec)
        if kind == "CATEGORY":
            return list(spec.get("categories"))
        if spec.get("num_samples") is None:
            raise SearchSpaceError(f"search space {name!r}: {kind} needs 'param_range' and "
                                   f"'num_samples'")
        start, stop = spec.get("param_range")
        n = spec.get("num_samples")
        if str(spec.get("space_type", "LINEAR")).upper() == "LINEAR":
            values = _linspace(float(start), float(stop), n)
        else:
            base = float(spec.get("base", 10 if kind == "FLOAT" else 2))
            exps = _linspace(math.log(start, base), math.log(stop, base), n)
            values = [base ** e for e in exps]
            values[0], values[-1] = float(start), float(stop)
        if kind == "FLOAT":
            return values
        out = []
        low, high = math.ceil(start), math.floor(stop)  # round down, but stay in the range
        for v in values:
            r = round(v)
            i = min(high, max(low, r if abs(v - r) < 1e-9 else math.floor(v)))
            if i not in out:
                out.append(i)
        return out

    @classmethod
    def prepare_distributions(cls, base_config, search_spaces) -> list[ADict]:
        """The Cartesian grid (last parameter varying fastest) of configs."""
        names = list(search_spaces.keys())
        value_lists = [cls.parameter_values(n, search_spaces[n]) for n in names]
        grid = []
        for point in itertools.product(*value_lists):
            config = base_config.clone() if isinstance(base_config, ADict) else ADict(base_config)
            for name, value in zip(names, point):
                config.set_value_by_name(name, value)
            grid.append(config)
        return grid

    @classmethod
    def grid_size(cls, search_spaces) -> int:
        return math.prod(len(cls.parameter_values(n, s)) for n, s in search_spaces.items())


_LOCKS = (type(threading.Lock()), type(threading.RLock()))


class _BaseState:
    """What :class:`HyperOpt` keeps for itself, in one attribute whose name a subclass
    cannot hit by accident (``self._HyperOpt__state``)."""

    __slots__ = ("study_id", "seed", "rng", "config", "recorder", "lock", "scope_lock",
                 "running", "saved", "executor", "shared", "explicit_id", "checkpoint_root",
                 "continuations", "seed_derived", "failures")

    def __init__(self, study_id, seed, checkpoint_root=None):
        self.study_id = study_id
        self.seed_derived = False  # the seed was derived from study_id (none was given)
        self.failures = []  # errors of the trials that failed in this process
        self.checkpoint_root = checkpoint_root
        self.continuations = None
        self.explicit_id = study_id is not None
        self.seed = seed
        self.executor = None  # the resolved executor (None: in this thread)
        self.shared = None  # the SharedStudy of this search; False: checked, there is none
        self.rng = None
        self.config = None
        self.recorder = None
        self.lock = threading.RLock()
        self.scope_lock = threading.Lock()  # held from setting scope.config to injection
        self.running = 0  # trials in flight (threads)
        self.saved = None  # scope.config before the first of them


def budget_option(algorithm: str, option: str, value) -> Fraction:
    """``value`` of a budget option as an exact positive Fraction, or
    :class:`SearchOptionError` naming ``algorithm`` and ``option``."""
    try:
        exact = budgets.exact(value, option)
    except (TypeError, ValueError) as e:
        raise SearchOptionError(f"{algorithm}: {e}") from None
    if exact <= 0:
        raise SearchOptionError(f"{algorithm}: {option} must be > 0, got {value!r}")
    return exact


def _check_exception_types(name: str, catch) -> tuple:
    types = catch if isinstance(catch, tuple) else (catch,) if isinstance(catch, type) else None
    if types is None and isinstance(catch, list):
        types = tuple(catch)
    if types is None or not all(isinstance(t, type) and issubclass(t, Exception) for t in types):
        raise SearchOptionError(f"{name}: catch must be an exception class or a tuple of "
                                f"them (subclasses of Exception), got {catch!r}")
    return types


def _json_text(value) -> str:
    """``value`` as compact JSON text with sorted keys, numbers written as the trial hash
    writes them (``2.0`` as ``2``, floats by their shortest repr; anything JSON cannot
    hold by its ``repr``)."""
    import json

    from ato.hyperopt.study import _canonical

    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def _exact_json(value, other):
    """``value`` as JSON data for comparing plans: real numbers as exact text (so ``9`` and
    ``9.0`` agree), mappings with sorted string keys, sequences as lists, anything else as
    ``other(value)``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return budgets.text(budgets.exact(value))
        except (TypeError, ValueError):
            return repr(value)
    if hasattr(value, "items"):
        return {str(k): _exact_json(v, other)
                for k, v in sorted(value.items(), key=lambda i: str(i[0]))}
    if isinstance(value, (list, tuple)):
        return [_exact_json(v, other) for v in value]
    return other(value)


class HyperOpt(abc.ABC):
    """Base class of search algorithms; a subclass implements ``main(func)``.

    ``HyperOpt(scope, search_spaces, tracker=None, mode='max', *, study_id=None,
    seed=None, max_budget=None, min_budget=None, eta=None, progress=None, catch=(),
    executor=None, heartbeat_interval=5.0, stale_after=60.0, retries=None, fail_fast=None,
    checkpoint_root=None)``

    The base parses and checks these common options (a wrong one raises
    :class:`SearchOptionError` naming the algorithm and the option; an unknown keyword
    raises it with the closest known name) and does the common work:

    - ``config``: the scope's fully built config (views and command line applied) plus
      ``__hyperopt_id__``; every candidate should start from a clone of it.
    - ``mode``: ``'max'`` or ``'min'``; ``better(self.mode)`` is the sort key.
    - ``max_budget`` / ``min_budget`` / ``eta``: exact :class:`fractions.Fraction`
      (defaults 1, ``min(1, max_budget)`` and 3; ``0 < min_budget <= max_budget``,
      ``eta > 1``); see :mod:`ato.hyperopt.budgets`.
    - ``seed`` (an int; when not given, derived from ``study_id`` if one was given, else
      drawn once and shared by every rank) and ``rng``, a :class:`random.Random` seeded
      with it: draw every random choice from ``self.rng`` and the same seed gives the same
      search.
    - ``evaluate(func, config, ...)``: runs one trial through the scope's injection,
      restores ``scope.config``, records the trial to ``tracker`` (a run with the tags of
      :mod:`ato.hyperopt.study` and the metric ``objective``) and, in a study resumed with
      the same ``study_id``, returns the recorded metric instead of running the objective.
    - ``catch``: exception types an objective may raise without ending the search; such
      a trial is recorded ``failed`` and scores NaN (ranked last).  Any other exception is
      recorded ``failed`` and propagates.
    - ``evaluate_batch(func, trials)``: trials that may run at once (a generation, a rung,
      a sample) go through the ``executor`` (``None``: ``'torch'`` inside an initialised
      ``torch.distributed`` group of several processes, else ``'serial'``; a name of
      :mod:`ato.hyperopt.executors` or an executor instance) or, in a shared study,
      through the tracker's study coordinator (:mod:`ato.hyperopt.workers`).
    - A *shared study*: with a ``tracker`` whose backend offers ``"studies"`` and an
      explicit ``study_id``, every process started with that id divides the study's
      trials with the others; ``heartbeat_interval`` (seconds between a worker's
      heartbeats), ``stale_after`` (seconds without one after which its trial is given to
      another worker), ``retries`` (how often a trial whose objective raised, or whose
      worker died, is run again before it is recorded ``failed``; not given: the study's,
      else 0) and ``fail_fast`` (stop the study once that many of its trials failed with
      the same error while none completed; ``0`` never; not given: the study's, else 5)
      tune it. In a shared study an objective's
      exception fails its trial (recorded with the error, NaN, ranked last) and the study
      goes on.
    - ``checkpoint_root``: for a multi-fidelity algorithm (``MULTI_FIDELITY = True``) the
      directory under which each configuration gets its ``__checkpoint_dir__``
      (:mod:`ato.hyperopt.trial`; default beside the tracker's SQLite file).  Such an
      algorithm charges a continued configuration :meth:`increment`, not its budget.

    The base's own state lives in one name-mangled attribute, so a subclass may use any
    attribute name of its own (``_config``, ``_state``, ``_rng``...).
    """

    PLUGIN_NAME = "base"
    COMMON_OPTIONS = ("tracker", "mode", "study_id", "seed", "max_budget", "min_budget", "eta",
                      "progress", "catch", "executor", "heartbeat_interval", "stale_after",
                      "retries", "fail_fast", "checkpoint_root")
    #: True for an algorithm that evaluates one configuration at rising budgets: its
    #: trials get ``__trial__``, ``__resume_budget__`` and ``__checkpoint_dir__``
    #: (:mod:`ato.hyperopt.trial`) so that the objective can continue a promoted one.
    MULTI_FIDELITY = False

    #: Constructor options that do not change which trials a search plans (how it runs,
    #: reports or is coordinated); every other option must be the same in every worker of
    #: a shared study (:meth:`plan_options`).
    RUN_OPTIONS = ("scope", "search_spaces", "tracker", "study_id", "seed", "progress", "catch",
                   "executor", "heartbeat_interval", "stale_after", "retries", "fail_fast",
                   "n_workers",
                   "checkpoint_root", "rank", "world_size", "backend")
    #: Plan options whose larger value only adds trials after the same ones (``n_trials``
    #: of random search): workers of one shared study may differ in them, so a study is
    #: extended by starting workers with a larger value (:meth:`extensible_options`).
    EXTENSIBLE_OPTIONS: tuple = ()

    def extensible_options(self) -> list[str]:
        """The plan options of :attr:`EXTENSIBLE_OPTIONS` for this search: a shared study's
        workers may give different values (each runs its own plan, a prefix of the larger
        one's, and returns the best of it)."""
        return list(self.EXTENSIBLE_OPTIONS)

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        # the arguments as the constructor receives them, for plan_options(); an unpickled
        # copy (no arguments) or one that does not bind records nothing
        try:
            import inspect

            signature = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            return self
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as e:
            if not args and not kwargs:  # unpickling: the state comes afterwards
                return self
            # missing or surplus arguments: say which algorithm, not HyperBand.__init__()
            raise SearchOptionError(f"{cls.algorithm_name()}: {e}; its signature is "
                                    f"{cls.__name__}{signature.replace(parameters=list(signature.parameters.values())[1:])}"
                                    ) from None
        bound.apply_defaults()
        given = {}
        for name, param in list(inspect.signature(cls.__init__).parameters.items())[1:]:
            value = bound.arguments.get(name)
            if param.kind is param.VAR_KEYWORD:
                given.update(value or {})
            elif param.kind is not param.VAR_POSITIONAL:
                given[name] = value
        # an option left out is its default: the most derived __init__ that names it says
        # which (so giving a default explicitly, or joining with an algorithm whose default
        # is the same, is no difference)
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            try:
                params = list(inspect.signature(init).parameters.values())[1:]
            except (TypeError, ValueError):
                continue
            for param in params:
                if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL) \
                        or param.default is param.empty:
                    continue
                given.setdefault(param.name, param.default)
        # only what plans the search (never the tracker, scope or executor: a copy of the
        # search pickled for another process must not carry them)
        self.__dict__["_HyperOpt__given"] = {k: v for k, v in given.items()
                                             if k not in cls.RUN_OPTIONS}
        return self

    def __init__(self, scope, search_spaces, tracker=None, mode: str = "max", *,
                 study_id: str | None = None, seed: int | None = None, max_budget=None,
                 min_budget=None, eta=None, progress: bool | None = None, catch=(),
                 executor=None, heartbeat_interval=5.0, stale_after=60.0,
                 retries: int | None = None, fail_fast: int | None = None,
                 checkpoint_root=None, **unknown):
        name = self.algorithm_name()
        if unknown:
            option = sorted(unknown)[0]
            close = difflib.get_close_matches(option, self.COMMON_OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SearchOptionError(f"{name}: unknown option {option!r}{hint}; the common "
                                    f"options are {', '.join(self.COMMON_OPTIONS)}")
        if mode not in ("min", "max"):
            raise SearchOptionError(f"{name}: mode must be 'min' or 'max', not {mode!r}")
        if not hasattr(search_spaces, "items") or not hasattr(search_spaces, "keys"):
            raise SearchOptionError(f"{name}: search_spaces must be a mapping of parameter "
                                    f"name to spec, got {type(search_spaces).__name__}")
        check_search_spaces(search_spaces)  # the same checks for every algorithm, up front
        if tracker is not None:
            lacking = [m for m in ("run", "log_metric", "finish")
                       if not callable(getattr(tracker, m, None))]
            if lacking:
                raise SearchOptionError(f"{name}: tracker {type(tracker).__name__} lacks "
                                        f"{', '.join(lacking)} (pass an SQLLogger or a logger "
                                        f"of a tracker plugin)")
        if study_id is not None and (not isinstance(study_id, str) or not study_id
                                     or any(c.isspace() or c == "," for c in study_id)):
            raise SearchOptionError(f"{name}: study_id must be a non-empty string without "
                                    f"spaces or commas, got {study_id!r}")
        if study_id is not None and len(study_id.encode("utf-8")) > continuation.MAX_NAME_BYTES:
            raise SearchOptionError(f"{name}: study_id is {len(study_id.encode('utf-8'))} bytes "
                                    f"long ({study_id[:40]!r}...); it names a study in the "
                                    f"tracker and a directory under checkpoint_root, which "
                                    f"hold at most {continuation.MAX_NAME_BYTES}: use a shorter "
                                    f"one")
        if study_id is not None and not continuation.is_path_name(study_id):
            raise SearchOptionError(f"{name}: study_id {study_id!r} names a directory under "
                                    f"checkpoint_root, so it cannot contain '/' or '\\', be "
                                    f"'.' or '..', or hold control characters; use e.g. "
                                    f"{continuation.suggest_path_name(study_id)!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or seed < 0):
            raise SearchOptionError(f"{name}: seed must be a non-negative int, got {seed!r}")
        if checkpoint_root is not None and (not isinstance(checkpoint_root, (str, os.PathLike))
                                            or not str(checkpoint_root)):
            raise SearchOptionError(f"{name}: checkpoint_root must be a directory path, got "
                                    f"{checkpoint_root!r}")
        if checkpoint_root is not None:
            why = continuation.unwritable(continuation.checkpoint_root(option=checkpoint_root))
            if why:
                raise SearchOptionError(f"{name}: checkpoint_root={str(checkpoint_root)!r} "
                                        f"cannot hold checkpoints: {why}; pass a writable "
                                        f"directory")
        if progress is not None and not isinstance(progress, bool):
            raise SearchOptionError(f"{name}: progress must be True, False or None, "
                                    f"got {progress!r}")
        max_b = budget_option(name, "max_budget", 1 if max_budget is None else max_budget)
        if min_budget is None:
            min_b = min(Fraction(1), max_b)
        else:
            min_b = budget_option(name, "min_budget", min_budget)
        if min_b > max_b:
            raise SearchOptionError(f"{name}: min_budget must be <= max_budget, got "
                                    f"min_budget={min_budget!r}, max_budget={max_budget!r}")
        eta_f = budget_option(name, "eta", 3 if eta is None else eta)
        if eta_f <= 1:
            raise SearchOptionError(f"{name}: eta must be > 1, got {eta!r}")
        for option, value in (("heartbeat_interval", heartbeat_interval),
                              ("stale_after", stale_after)):
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not 0 < value < math.inf):
                raise SearchOptionError(f"{name}: {option} must be a number of seconds > 0, "
                                        f"got {value!r}")
        if stale_after <= heartbeat_interval:
            raise SearchOptionError(f"{name}: stale_after must be larger than "
                                    f"heartbeat_interval (a live worker would look dead), got "
                                    f"stale_after={stale_after!r}, "
                                    f"heartbeat_interval={heartbeat_interval!r}")
        if retries is not None and (isinstance(retries, bool)
                                    or not isinstance(retries, numbers.Integral) or retries < 0):
            raise SearchOptionError(f"{name}: retries must be an int >= 0, got {retries!r}")
        if fail_fast is False:
            fail_fast = 0
        if fail_fast is not None and (isinstance(fail_fast, bool)
                                      or not isinstance(fail_fast, numbers.Integral)
                                      or fail_fast < 0):
            raise SearchOptionError(f"{name}: fail_fast must be an int >= 0 (how many trials "
                                    f"failed with one error, none completed, stop a shared "
                                    f"study; 0 or False: never), got {fail_fast!r}")
        if executor is not None and not isinstance(executor, str) and not callable(
                getattr(executor, "map", None)):
            raise SearchOptionError(f"{name}: executor must be a name ('serial', 'threads', "
                                    f"'processes', 'torch', 'ray', ...) or an executor with "
                                    f"map(fn, items), got {executor!r}")
        if isinstance(executor, str) and executor != "serial":
            _executor(name, executor)  # a misspelled name fails here, on every path
        if (process_group() is not None or getattr(self, "world_size", 1) > 1
                or executor == "torch" or getattr(executor, "name", None) == "torch"):
            _check_numpy(name)  # on every rank, before any collective
        self.scope = scope
        self.search_spaces = search_spaces
        self.tracker = tracker
        self.mode = mode
        self.max_budget, self.min_budget, self.eta = max_b, min_b, eta_f
        self.progress = progress
        self.catch = _check_exception_types(name, catch)
        self.executor = executor
        self.heartbeat_interval = float(heartbeat_interval)
        self.stale_after = float(stale_after)
        #: as given (``None``: the study's in a shared study, else 0 and FAIL_FAST)
        self.retries = None if retries is None else int(retries)
        self.fail_fast = None if fail_fast is None else int(fail_fast)
        derived = seed is None and study_id is not None
        if derived:
            seed = study_seed(study_id)
        self.__state = _BaseState(study_id, None if seed is None else int(seed),
                                  checkpoint_root)
        self.__state.seed_derived = derived

    # ------------------------------------------------------------------ options
    def plan_options(self) -> dict:
        """The options that decide which trials this search plans, as JSON data:
        ``max_budget``, ``min_budget`` and ``eta`` (exact text), then every other
        constructor argument not in :attr:`RUN_OPTIONS` (``n_trials``, ``max_trials``,
        ``total_budget``, ``iterations``, ``sampler``, ``halving_rate``...; numbers as
        exact text, so ``9`` and ``9.0`` agree; an object by its type's name).  Two
        workers of one shared study must agree on all of them."""
        def other(value):
            if value is None or isinstance(value, (bool, str)):
                return value
            return f"<{type(value).__module__}.{type(value).__qualname__}>"

        options = {"max_budget": budgets.text(self.max_budget),
                   "min_budget": budgets.text(self.min_budget), "eta": budgets.text(self.eta)}
        given = self.__dict__.get("_HyperOpt__given") or {}
        for name, value in sorted(given.items()):
            if name not in self.RUN_OPTIONS and name not in options and name != "mode":
                options[name] = _exact_json(value, other)
        return options

    def plan_space(self) -> dict:
        """The search space as JSON data (each parameter's spec with sorted keys, numbers
        as exact text): what two workers of one shared study must agree on."""
        return {str(name): _exact_json(spec, jsonable)
                for name, spec in self.search_spaces.items()}

    def plan_config(self) -> dict:
        """What of the base config decides a trial's result, as JSON data: ``{dotted key:
        value text}`` for every leaf of :attr:`config` except the searched keys and the
        reserved ``__name__`` keys (a value longer than 80 characters as its first 48 and
        a sha256 digest of the whole).  Two workers of one shared study must agree on it:
        the same searched values under another base config are another experiment."""
        searched = {str(n) for n in self.search_spaces.keys()}
        out: dict = {}

        def walk(node, prefix):
            for key, value in node.items():
                key = str(key)
                if key.startswith("__") and key.endswith("__"):
                    continue
                name = f"{prefix}{key}"
                if name in searched:
                    continue
                if hasattr(value, "items") and len(value):
                    walk(value, name + ".")
                    continue
                text = _json_text(value)
                if len(text) > 80:
                    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
                    text = f"{text[:48]}... (sha256 {digest})"
                out[name] = text

        walk(self.config, "")
        return dict(sorted(out.items()))

    @classmethod
    def algorithm_name(cls) -> str:
        """``PLUGIN_NAME`` (the class name for the abstract base)."""
        name = getattr(cls, "PLUGIN_NAME", None)
        return cls.__name__ if name in (None, "base") else str(name)

    def broadcast_object_from_root(self, obj):
        """The root process's ``obj`` on every process of the search: through
        ``torch.distributed`` inside an initialised group of several processes, else
        ``obj`` itself."""
        group = process_group()
        if group is None:
            return obj
        holder = [obj]
        group[0].broadcast_object_list(holder, src=0)
        return holder[0]

    def get_hyperopt_id(self) -> str:
        """The study id: ``study_id`` when given, else 12 random hex digits drawn once
        (the same on every rank)."""
        state = self.__state
        with state.lock:
            if state.study_id is None:
                state.study_id = self.broadcast_object_from_root(uuid.uuid4().hex[:12])
            return state.study_id

    @property
    def study_id(self) -> str:
        return self.get_hyperopt_id()

    @property
    def seed(self) -> int:
        """The seed (drawn once, from the root, when not given)."""
        state = self.__state
        with state.lock:
            if state.seed is None:
                state.seed = self.broadcast_object_from_root(secrets.randbits(32))
            return state.seed

    @property
    def rng(self) -> random.Random:
        """A :class:`random.Random` seeded with ``seed``."""
        state = self.__state
        with state.lock:
            if state.rng is None:
                state.rng = random.Random(self.seed)
            return state.rng

    @property
    def config(self) -> ADict:
        """The base config of every candidate (built from the scope on first use)."""
        state = self.__state
        if state.config is None:
            scope = self.scope
            base = scope.build().clone() if hasattr(scope, "build") else ADict(scope.config)
            base["__hyperopt_id__"] = self.get_hyperopt_id()
            state.config = base
        return state.config

    @config.setter
    def config(self, value) -> None:
        self.__state.config = value

    # ------------------------------------------------------------------ trials
    def begin_search(self) -> None:
        """Start a new search on this instance: trials are numbered afresh and the
        study's completed trials are (re)loaded from the tracker.  ``launcher`` calls it;
        an algorithm whose ``main`` does not use ``launcher`` may call it first.  In a
        distributed search every rank calls it, so the ranks agree on the study id and the
        seed here, whichever trials each rank then runs (and on the trials to reuse: the
        root reads them and hands them to the others)."""
        self.end_search()
        state = self.__state
        state.recorder = None
        state.continuations = None
        state.failures = []
        if self.MULTI_FIDELITY and self.tracker is not None and state.checkpoint_root is None:
            # the default root (beside the tracker's SQLite file, or ./ato-studies): checked
            # before the study is joined or any trial runs
            root = continuation.checkpoint_root(self.tracker, None, self.get_hyperopt_id())
            why = continuation.unwritable(root)
            if why:
                raise SearchOptionError(f"{self.algorithm_name()}: the checkpoint root {root} "
                                        f"cannot hold checkpoints: {why}; pass "
                                        f"checkpoint_root= a writable directory")
        recorder = self.recorder()
        launched = os.environ.get("WORLD_SIZE", "1")
        if (launched.isdigit() and int(launched) > 1 and process_group() is None
                and self.executor is None
                and not (self.tracker is not None and state.explicit_id)
                and not isinstance(self, DistributedMixIn)):
            warnings.warn(
                f"{self.algorithm_name()}: this process is one of WORLD_SIZE={launched} "
                f"(torchrun) but no torch.distributed process group is initialised, so every "
                f"rank runs every trial; call torch.distributed.init_process_group() before "
                f"the search, pass executor='torch', or give the ranks one study_id",
                RuntimeWarning, stacklevel=user_stacklevel())
        if process_group() is not None or getattr(self, "world_size", 1) > 1:
            _check_numpy(self.algorithm_name())  # a group initialised after the search
            recorder.done = self.broadcast_object_from_root(recorder.done)
            if self.MULTI_FIDELITY:  # every rank names the same checkpoint directories
                group = process_group()
                rank = group[1] if group is not None else getattr(self, "rank", 0)
                root = (continuation.checkpoint_root(self.tracker, state.checkpoint_root,
                                                     self.get_hyperopt_id())
                        if rank == 0 else None)
                root = self.broadcast_object_from_root(None if root is None else str(root))
                state.checkpoint_root = root

    def end_search(self) -> None:
        """Leave the shared study, if this search joined one (stops the heartbeat).
        ``launcher`` calls it when the search returns or raises; calling it again is
        harmless."""
        state = self.__state
        with state.lock:
            shared, state.shared = state.shared, None
            executor, state.executor = state.executor, None
        if shared:
            shared.close()
        if executor is not None and (self.executor is None or isinstance(self.executor, str)):
            executor.close()  # one this search made from a name

    def recorder(self) -> TrialRecorder:
        """The :class:`~ato.hyperopt.study.TrialRecorder` of the current search."""
        state = self.__state
        with state.lock:
            if state.recorder is None:
                state.recorder = TrialRecorder(
                    self.tracker, self.get_hyperopt_id(), list(self.search_spaces.keys()),
                    self.algorithm_name(), self.seed)
            return state.recorder

    def shared_study(self):
        """The :class:`ato.hyperopt.workers.SharedStudy` through which this process works
        on the study together with other workers, or None when the search runs alone (no
        tracker, no explicit ``study_id``, or a tracker backend without ``"studies"``).
        Joined on first use; :meth:`end_search` leaves it."""
        state = self.__state
        with state.lock:
            if state.shared is None:
                state.shared = False
                if self.tracker is not None and state.explicit_id:
                    state.shared = open_shared_study(
                        self.tracker, self.get_hyperopt_id(),
                        heartbeat_interval=self.heartbeat_interval,
                        stale_after=self.stale_after, retries=self.retries,
                        fail_fast=self.fail_fast,
                        meta={"algorithm": self.algorithm_name(), "mode": self.mode,
                              "seed": self.seed,
                              "space": sorted(map(str, self.search_spaces.keys())),
                              "options": self.plan_options(), "search_space": self.plan_space(),
                              "base_config": self.plan_config(),
                              "seed_from_study_id": state.seed_derived,
                              "checkpoint_root": (str(self.continuations().root)
                                                  if self.MULTI_FIDELITY else None),
                              "stale_after": self.stale_after,
                              "heartbeat_interval": self.heartbeat_interval,
                              "retries": self.retries or 0,
                              "fail_fast": (FAIL_FAST if self.fail_fast is None
                                            else self.fail_fast),
                              "extensible": self.extensible_options()}) or False
                alone = {"retries": "a trial whose objective raises is recorded failed at once",
                         "fail_fast": "the search stops at the first exception catch= does "
                                      "not name"}
                for option, instead in alone.items():
                    value = getattr(self, option)
                    if not state.shared and value:
                        warnings.warn(
                            f"{self.algorithm_name()}: {option}={value} applies to a shared "
                            f"study only (a tracker with study_id=...): alone, {instead}",
                            RuntimeWarning, stacklevel=user_stacklevel())
            return state.shared or None

    def executor_instance(self):
        """The executor trials run on (None: one after the other in this thread). Made from
        ``executor`` on first use; :meth:`end_search` closes one made from a name."""
        state = self.__state
        with state.lock:
            if state.executor is None:
                spec = self.executor
                if spec is None:  # DistributedMixIn searches divide the work themselves
                    spec = ("torch" if process_group() is not None
                            and not isinstance(self, DistributedMixIn) else "serial")
                if spec == "serial":
                    return None
                if isinstance(spec, str):
                    state.executor = _executor(self.algorithm_name(), spec, make=True)
                else:
                    state.executor = spec
            return state.executor

    def continuations(self) -> continuation.Continuations:
        """The budget each configuration of the current search reached, and where its
        checkpoint directory is (:class:`ato.hyperopt.trial.Continuations`)."""
        state = self.__state
        with state.lock:
            if state.continuations is None:
                study, tracker, option = self.get_hyperopt_id(), self.tracker, state.checkpoint_root
                state.continuations = continuation.Continuations(
                    study, list(self.search_spaces.keys()),
                    lambda: continuation.checkpoint_root(tracker, option, study))
            return state.continuations

    def increment(self, config, budget) -> Fraction:
        """What the trial of ``config`` at ``budget`` costs (exact): ``budget`` minus the
        budget its configuration resumed from (``config.__resume_budget__``, exact) for a
        multi-fidelity algorithm, else ``budget``.  Call it after the trial."""
        budget = budgets.exact(budget)
        identity = config.get("__trial__") if self.MULTI_FIDELITY else None
        if identity is None:
            return budget
        if config.get("__resume_budget__") == budgets.plain(budget):
            return Fraction(0)  # a repeat or a re-evaluation: nothing to train
        return budget - self.continuations().resumed_from(identity, budget)

    def evaluate(self, func, config, *args, **kwargs):
        """Run the objective on ``config`` as one trial (see :meth:`evaluate_trial`);
        its coordinates are read from ``config``: ``__budget__`` (default
        ``max_budget``), ``__num_halved__`` (the rung, default 0) and ``__bracket__``
        (default 0).  Extra arguments go to the objective."""
        return self.evaluate_trial(func, config, args, kwargs,
                                   budget=config.get("__budget__"),
                                   rung=config.get("__num_halved__", 0),
                                   bracket=config.get("__bracket__", 0))

    def evaluate_trial(self, func, config, args=(), kwargs=None, *, budget=None, rung: int = 0,
                       bracket: int = 0, final: bool = False, record: bool = True):
        """Run ``func`` on ``config`` through the scope's injection and return its metric
        (a number; NaN for a trial that raised one of ``catch``).

        ``budget`` (exact, default ``max_budget``), ``rung`` and ``bracket`` place the
        trial in the study; a ``__budget__`` key in ``config`` is normalised to
        :func:`ato.hyperopt.budgets.plain`.  The trial is recorded to ``tracker`` unless
        ``record`` is false (a replica of a trial another rank records), and a trial
        completed in an earlier session of the same study returns its recorded metric
        without calling ``func``.  ``scope.config`` is restored afterwards, whatever
        happens.  It is :meth:`evaluate_batch` of one trial (in a shared study, this
        worker claims it or waits for the worker that runs it).
        """
        request = TrialRequest(config, budget, rung, bracket, final)
        if not record:
            resumed = self.__prepare(request)
            recorder = self.recorder()
            if recorder.tracker is not None:
                hit, metric = recorder.cached(recorder.trial(config, request.budget, bracket,
                                                             rung, final))
                if hit:
                    self.__reached([resumed], [metric])
                    return metric
            metric = self.__run_local(func, [(request, None)], args, kwargs or {}, False)[0]
            self.__reached([resumed], [metric])
            return metric
        return self.evaluate_batch(func, [request], args, kwargs)[0]

    def evaluate_batch(self, func, trials, args=(), kwargs=None) -> list:
        """Evaluate ``trials`` — trials that may run at the same time (a generation, a
        rung, a batch of proposals) — and return their metrics, in order (NaN for a trial
        that raised one of ``catch``, or that failed in a shared study).

        Each item is a :class:`~ato.hyperopt.workers.TrialRequest` or a config (its place
        read as :meth:`evaluate` reads it).  Trials completed in an earlier session of the
        study are reused.  Alone, the others run on the executor (one after the other by
        default; each recorded as soon as it ends, and an objective's exception that
        ``catch`` does not name propagates after the trials before it are recorded).  In a
        shared study (:meth:`shared_study`) the batch is enqueued in the study and this
        worker claims, runs and reports its trials until every trial of the batch is done,
        by it or by other workers; every worker gets the same metrics.
        """
        kwargs = kwargs or {}
        requests, resumed = [], []
        for item in trials:
            if isinstance(item, TrialRequest):
                request = TrialRequest(item.config, item.budget, item.rung, item.bracket,
                                       item.final)
            else:
                request = TrialRequest(item, item.get("__budget__"),
                                       item.get("__num_halved__", 0), item.get("__bracket__", 0))
            resumed.append(self.__prepare(request))
            requests.append(request)
        recorder = self.recorder()
        shared = self.shared_study()
        tracked = recorder.tracker is not None
        pairs = [(r, recorder.trial(r.config, r.budget, r.bracket, r.rung, r.final) if tracked
                  else None) for r in requests]
        pairs = [(r, dataclasses.replace(t, resumed_from=c.resume_budget)
                  if t is not None and c is not None and c.resume_budget else t)
                 for (r, t), c in zip(pairs, resumed)]
        metrics: list = [None] * len(pairs)
        todo = []
        for i, (_, trial) in enumerate(pairs):
            hit, metric = recorder.cached(trial) if trial is not None else (False, None)
            if hit:
                metrics[i] = metric
            else:
                todo.append(i)
        if not todo:
            self.__reached(resumed, metrics)
            return metrics
        if shared is not None:
            done = self.__run_shared(shared, func, [pairs[i] for i in todo], args, kwargs)
        else:
            done = self.__run_local(func, [pairs[i] for i in todo], args, kwargs, tracked)
        for i, metric in zip(todo, done):
            metrics[i] = metric
        self.__reached(resumed, metrics)
        return metrics

    def __prepare(self, request: TrialRequest):
        """Normalise a request in place: an exact budget, ``__budget__`` written plainly;
        for a multi-fidelity algorithm, fill the keys that let the objective continue the
        configuration (:func:`ato.hyperopt.trial.prepare`) and return the Continuation."""
        request.budget = (self.max_budget if request.budget is None
                          else budget_option(self.algorithm_name(), "budget", request.budget))
        request.rung, request.bracket = int(request.rung), int(request.bracket)
        if "__budget__" in request.config:
            request.config["__budget__"] = budgets.plain(request.budget)
        if not self.MULTI_FIDELITY:
            return None
        return continuation.prepare(request.config, self.continuations(), request.budget,
                                    request.bracket)

    def __reached(self, resumed, metrics) -> None:
        """Each configuration whose trial produced a metric (here, in another worker, or
        in an earlier session) reached that trial's budget; a failed one (NaN) did not."""
        for c, metric in zip(resumed, metrics):
            if c is None:
                continue
            if metric is not None and metric == metric:
                self.continuations().complete(c)
            else:
                self.continuations().failed(c)

    def call_objective(self, func, config, args=(), kwargs=None, on_executor: bool = False,
                       logger=None):
        """Run ``func`` on ``config`` through the scope's injection (``scope.config``
        restored afterwards) and return its metric, without recording anything: for an
        algorithm that records trials itself (ASHA in a shared study). ``on_executor``:
        run it on one slot of :meth:`executor_instance` (when there is one other than
        ``torch``), as a shared study's claim loops do. Raises what the objective raises;
        a ``TypeError`` when it returns no number.  ``logger``: the logger holding the
        trial's run, where the objective's calls on the tracker go
        (:func:`~ato.hyperopt.study.on_trial_logger`)."""
        executor = self.executor_instance() if on_executor else None
        if executor is not None and getattr(executor, "name", "") == "torch":
            executor = None
        run = on_trial_logger(self.__objective(func, args, kwargs or {}), self.tracker, logger,
                              executor)
        if executor is None:
            return run(config)
        return executor.map(run, [config])[0].result()  # raises what the trial raised

    def executor_slots(self) -> int:
        """How many trials this process runs at once on :meth:`executor_instance`: its
        ``slots`` (1 without one, or for ``torch``, whose ranks share a batch)."""
        executor = self.executor_instance()
        if executor is None or getattr(executor, "name", "") == "torch":
            return 1
        return max(1, int(getattr(executor, "slots", 1)))

    def __objective(self, func, args, kwargs):
        """``config -> metric``: the objective through the scope's injection (a
        :class:`_Objective`, which pickles whenever ``func`` and this search do)."""
        return _Objective(self, func, args, kwargs)

    def _run_objective(self, func, args, kwargs, config):
        """One trial of :class:`_Objective`: ``func`` on ``config`` through the scope, in a
        directory of this attempt when the search continues configurations."""
        name = self.algorithm_name()
        own = continuation.attempt(config) if self.MULTI_FIDELITY else None
        if own is None:
            return _checked_metric(self.__call_in_scope(func, config, args, kwargs), name)
        with own:  # the objective writes into a directory of this attempt only
            metric = _checked_metric(self.__call_in_scope(func, config, args, kwargs), name)
            own.commit()
            return metric

    def __run_local(self, func, pairs, args, kwargs, record: bool) -> list:
        """Evaluate ``pairs`` of (request, trial) in this process (or its torch group)."""
        recorder = self.recorder()
        run = self.__objective(func, args, kwargs)
        executor = self.executor_instance()
        if executor is None:
            metrics = []
            for request, trial in pairs:
                opened = recorder.start(trial, request.config) if record else None
                try:
                    metric = run(request.config)
                except (NaNMetricError, *self.catch) as e:
                    self.__state.failures.append(describe_exception(e))
                    if record:
                        recorder.record(trial, request.config, None, "failed",
                                        describe_exception(e), opened)
                    metrics.append(math.nan)
                    continue
                except Exception as e:
                    if record:
                        recorder.record(trial, request.config, None, "failed",
                                        describe_exception(e), opened)
                    raise
                except BaseException as e:  # Ctrl-C, SIGTERM: the run ends killed
                    if opened is not None:
                        recorder.record(trial, request.config, None, "killed",
                                        describe_exception(e) or type(e).__name__, opened)
                    raise
                if record:
                    recorder.record(trial, request.config, metric, opened=opened)
                metrics.append(metric)
            return metrics
        group = process_group()
        torch_map = getattr(executor, "name", "") == "torch"
        if group is not None and torch_map and group[1] != 0:
            record = False  # every rank gets every outcome; the root records them
        configs = [request.config for request, _ in pairs]
        opened: list = [None] * len(pairs)
        if not record:
            outcomes = executor.map(run, configs)
        elif torch_map:  # a collective: the ranks start their shares of the batch now
            opened = [recorder.start(trial, config) for (_, trial), config in zip(pairs, configs)]
            outcomes = executor.map(run, configs)
        else:
            outcomes = self.__submit_all(executor, run, pairs, opened, recorder)
        metrics, failure = [], None
        for (request, trial), outcome, handle in zip(pairs, outcomes, opened):
            if outcome.ok:
                metric = _as_metric(outcome.value, self.algorithm_name())
                if metric != metric:  # NaN from a remote run: failed, as here
                    outcome = dataclasses.replace(
                        outcome, ok=False, exception=None,
                        error=f"NaNMetricError: {_nan_message(self.algorithm_name())}",
                        types=_exception_types(NaNMetricError))
            if outcome.ok:
                if record:
                    recorder.record(trial, request.config, metric, opened=handle)
                metrics.append(metric)
                continue
            self.__state.failures.append(outcome.error or "the trial failed")
            if record:
                recorder.record(trial, request.config, None, "failed", outcome.error, handle)
            metrics.append(math.nan)
            if failure is None and not self.__caught(outcome):
                failure = outcome
        if failure is not None:
            failure.result()  # raises the live exception, or TrialError with its text
        return metrics

    @staticmethod
    def __submit_all(executor, run, pairs, opened: list, recorder) -> list:
        """:meth:`Executor.map` through ``submit``/``wait_any`` (at most ``slots`` in
        flight), opening each trial's run when it is handed to the executor (``opened``
        filled in place), so a run's start time and ``running`` status are the trial's."""
        outcomes: list = [None] * len(pairs)
        pending: dict = {}
        queue = iter(enumerate(pairs))
        slots = max(1, int(getattr(executor, "slots", 1)))

        def submit_next() -> bool:
            for index, (request, trial) in queue:
                opened[index] = handle = recorder.start(trial, request.config)
                # the objective's tracker calls reach this trial's run, not another's
                routed = on_trial_logger(run, recorder.tracker, handle and handle.logger,
                                         executor)
                pending[executor.submit(routed, request.config)] = index
                return True
            return False

        try:
            while len(pending) < slots and submit_next():
                pass
            while pending:
                handle, outcome = executor.wait_any(list(pending))
                outcomes[pending.pop(handle)] = outcome
                submit_next()
        except BaseException as e:
            for index in pending.values():  # interrupted: the runs in flight end killed
                if opened[index] is not None:
                    request, trial = pairs[index]
                    recorder.record(trial, request.config, None, "killed",
                                    describe_exception(e) or type(e).__name__, opened[index])
            raise
        return outcomes

    def __caught(self, outcome) -> bool:
        """Whether a failed outcome's exception is one of ``catch`` (subclasses included):
        by ``isinstance`` when the live exception is here, else by the MRO names the
        outcome carries from the process where it happened (another rank, a pool child, a
        Ray worker), so every rank of a torch group decides alike."""
        classes = (NaNMetricError, *self.catch)
        if outcome.exception is not None:
            return isinstance(outcome.exception, classes)
        types = tuple(getattr(outcome, "types", ()) or ())
        if types:
            return any(f"{c.__module__}.{c.__qualname__}" in types for c in classes)
        # an executor of a third party that sends only the text: its leading class name
        name = str(outcome.error or "").partition(":")[0].strip()
        return any(name in (c.__name__, f"{c.__module__}.{c.__qualname__}") for c in classes)

    def __run_shared(self, shared, func, pairs, args, kwargs) -> list:
        """Evaluate ``pairs`` together with the study's other workers."""
        from ato.tracking import TrialSpec

        recorder = self.recorder()
        run = self.__objective(func, args, kwargs)
        by_key = {trial.key: (request, trial) for request, trial in pairs}
        specs = [TrialSpec(trial.key, self.trial_payload(request, trial))
                 for request, trial in pairs]

        executor = self.executor_instance()
        slots = 1
        if executor is not None and getattr(executor, "name", "") != "torch":
            slots = max(1, int(getattr(executor, "slots", 1)))  # claim loops in this process

        # A claim's run is opened before its objective is called, as alone, so the
        # objective's own tracker.log_metric calls land on the trial's run; it ends with
        # the result when the study accepts this worker's report, else 'killed' with why
        # (ClaimRuns): one completed or failed run per trial.
        runs = ClaimRuns(recorder)

        def run_claim(claim):
            request, trial = by_key[claim.key]
            runs.start(claim, trial, request.config)
            # the objective's tracker calls reach this claim's run, not another's
            routed = on_trial_logger(run, recorder.tracker, runs.logger_of(claim),
                                     executor if slots > 1 else None)
            if slots == 1:
                return routed(request.config)
            return executor.map(routed, [request.config])[0].result()  # raises what it raised

        def record(claim, metric, status, error):
            request, trial = by_key[claim.key]
            runs.record(claim, trial, request.config, metric, status, error)

        results = shared.evaluate(specs, run_claim, record, threads=slots,
                                  unrecorded=runs.unrecorded)
        return [results[trial.key] for _, trial in pairs]

    def trial_payload(self, request: TrialRequest, trial) -> dict:
        """What a shared study stores with a trial (JSON): the searched ``values``, the
        whole ``config``, ``budget`` (exact text), ``bracket``, ``rung``, ``final`` and
        ``config_hash`` — enough for ``ato search status`` and for another worker to
        rebuild the trial."""
        return {"values": jsonable(searched_values(request.config, self.search_spaces.keys())),
                "config": jsonable(request.config), "budget": budgets.text(request.budget),
                "bracket": request.bracket, "rung": request.rung, "final": request.final,
                "config_hash": trial.config_hash}

    # An executor that runs trials in another process (Ray, processes under spawn) pickles
    # the trial function, and with it this search: the copy only runs the objective through
    # the scope, so the tracker, the executor, the shared study and the locks stay here.
    def __getstate__(self):
        state = dict(self.__dict__)
        base = state.pop("_HyperOpt__state")
        state["_HyperOpt__state"] = (base.study_id, base.seed, base.config)
        state["tracker"] = state["executor"] = None
        for key, value in state.items():  # a copy reports nothing (stderr may not pickle)
            if isinstance(value, Progress):
                state[key] = Progress(False, stream=io.StringIO(), label=value.label)
        locks = {k: type(v) for k, v in state.items() if isinstance(v, _LOCKS)}
        state.update(dict.fromkeys(locks))
        state["_HyperOpt__locks"] = {k: t is _LOCKS[1] for k, t in locks.items()}
        return state

    def __setstate__(self, state):
        study_id, seed, config = state.pop("_HyperOpt__state")
        locks = state.pop("_HyperOpt__locks")
        self.__dict__.update(state)
        self.__state = _BaseState(study_id, seed)
        self.__state.config = config
        for key, reentrant in locks.items():
            setattr(self, key, threading.RLock() if reentrant else threading.Lock())

    def __call_in_scope(self, func, config, args, kwargs):
        """``scope(func)(*args, **kwargs)`` with ``config`` as the scope's config.

        Safe when trials run in threads (ASHA's ``n_workers``): each call holds a lock
        from setting ``scope.config`` until the scope has injected it, and the scope's own
        config comes back when the last trial in flight ends.
        """
        self.config  # noqa: B018 - builds the scope first, so no call re-applies its CLI
        scope, state = self.scope, self.__state
        lock = state.scope_lock
        handed_over = False

        def objective(*a, **k):
            nonlocal handed_over
            handed_over = True
            lock.release()  # the config is injected: other trials may go
            return func(*a, **k)

        if _has_code(func):
            objective.__wrapped__ = func  # what the scope inspects to inject
        else:  # functools.partial, a callable object: the config is the first argument
            inject = objective

            def objective(config, *a, **k):
                return inject(config, *a, **k)

        objective.__name__ = getattr(func, "__name__", "objective")
        lock.acquire()
        try:
            if state.running == 0:
                state.saved = scope._config
            state.running += 1
            scope._config = config
            return scope(objective)(*args, **kwargs)
        finally:
            if not handed_over:
                lock.release()
            with lock:
                state.running -= 1
                if state.running == 0:
                    scope._config, state.saved = state.saved, None

    def launcher(self, func):
        """A callable running ``self.run(func, ...)`` as a new search: what ``main``
        returns for algorithms that implement ``run``."""
        def launch(*args, **kwargs) -> ADict:
            self.begin_search()
            try:
                result = self.run(func, *args, **kwargs)
                self.check_result(result)
                return result
            except StudyStoppedError as e:
                # the study's state, not a fault in the frames between here and the
                # claim loop: the traceback starts at the script's call, then the message
                raise e.with_traceback(None) from None
            finally:
                self.end_search()

        launch.__name__ = getattr(func, "__name__", "launch")
        launch.__wrapped__ = func
        return launch

    def check_result(self, result) -> None:
        """Raise :class:`NoSuccessfulTrialError` when ``result``'s metric is NaN or missing:
        the trials that decide the result all failed.  The message counts the failed trials
        (of the shared study when this search joined one, else of this process) and quotes
        up to three distinct errors with how often each occurred.  ``launcher`` calls it."""
        metric = result.get("metric") if hasattr(result, "get") else None
        if isinstance(metric, numbers.Real) and metric == metric:
            return
        errors = list(self.__state.failures)
        shared = self.__state.shared
        if shared:
            from ato.hyperopt.workers import split_error

            try:
                errors = [split_error(s.error)[0] or "failed without an error" for s in
                          shared.coordinator.trials(self.get_hyperopt_id()) if s.state == "failed"]
            except Exception:  # the database is gone: what this process saw
                pass
        counts: dict[str, int] = {}
        for error in errors:
            counts[error] = counts.get(error, 0) + 1
        first = "; ".join(f"{e!r} x{n}" if n > 1 else repr(e)
                          for e, n in list(counts.items())[:3])
        trials = result.get("trials") if hasattr(result, "get") else None
        of = f" of {trials}" if isinstance(trials, int) else ""
        again, db = "", ""
        if self.tracker is not None:
            from ato.tracking import url_of
            from ato.tracking.secrets import db_option

            db = " " + db_option(getattr(self.tracker, "url", None) or url_of(self.tracker.config))
        if shared:
            again = (f"; in a shared study failed trials stay failed, and starting the "
                     f"workers again reruns none: fix the cause, then run them again with "
                     f"`ato search requeue {self.get_hyperopt_id()} --failed{db}`, or "
                     f"start a new study_id")
        raise NoSuccessfulTrialError(
            f"{self.algorithm_name()}: study {self.get_hyperopt_id()!r} has no best "
            f"configuration: {len(errors)}{of} trials failed and none that decides the result "
            f"gave a metric" + (f"; first errors: {first}" if first else "")
            + (" (see the failed runs: ato runs list --tags study:" + self.get_hyperopt_id()
               + db + ")" if self.tracker is not None else "")
            + again)

    @abc.abstractmethod
    def main(self, func):
        """Wrap the objective ``func(config) -> metric``; return a callable that runs the
        search and returns its result (an ADict with at least ``config`` and ``metric``)."""


class _Objective:
    """``config -> metric``: one search's objective as an executor runs it.  A module-level
    class rather than a closure, so that plain pickle sends it by reference (the
    ``processes`` executor under ``spawn`` without cloudpickle) whenever the objective is
    a module-level function; the search pickles without its tracker, executor and locks."""

    def __init__(self, search, func, args, kwargs):
        self.search, self.func, self.args, self.kwargs = search, func, args, kwargs

    def __call__(self, config):
        return self.search._run_objective(self.func, self.args, self.kwargs, config)

    def __repr__(self):
        return f"<objective {self.func!r} of {self.search.algorithm_name()}>"


def _check_numpy(algorithm: str) -> None:
    """:class:`SearchOptionError` when numpy cannot be imported: torch.distributed's
    object collectives (``broadcast_object_list``, ``all_gather_object``), which a
    distributed search uses, need it on the receiving ranks, and torch's wheels do not
    install it — without this check one rank fails inside torch and the others lose their
    connection to it."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise SearchOptionError(f"{algorithm}: distributed search needs numpy: pip install "
                                f"'ato-hyperopt[torch]'") from None


def _executor(algorithm: str, name: str, make: bool = False):
    """The executor class registered as ``name`` (an instance when ``make``), or
    :class:`SearchOptionError` naming the algorithm, the name and the nearest registered
    one — checked when the search is built, whichever path (alone, shared study, ASHA)
    would use the executor later."""
    try:
        from ato.hyperopt.executors import get_executor
        from ato.hyperopt.executors.base import executor_class
    except ImportError:
        raise SearchOptionError(f"{algorithm}: executor={name!r} needs ato.hyperopt.executors, "
                                f"which this installation lacks; use executor='serial'") from None
    try:
        return get_executor(name) if make else executor_class(name)
    except (AtoError, LookupError, ValueError) as e:
        raise SearchOptionError(f"{algorithm}: executor={name!r}: {e}") from None


def _has_code(func) -> bool:
    """Whether the scope can see ``func``'s parameters (a function or method)."""
    func = getattr(func, "__func__", func)
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    return getattr(func, "__code__", None) is not None


def _exception_types(cls: type) -> tuple[str, ...]:
    return tuple(f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__)


def _nan_message(algorithm: str) -> str:
    return f"{algorithm}: the objective returned NaN, which no trial can be ranked by"


def _checked_metric(value, algorithm: str):
    """:func:`_as_metric`, raising :class:`NaNMetricError` for NaN."""
    metric = _as_metric(value, algorithm)
    if metric != metric:
        raise NaNMetricError(_nan_message(algorithm))
    return metric


def _as_metric(value, algorithm: str):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value
    if not isinstance(value, (bool, str, bytes)) and hasattr(value, "__float__"):
        return float(value)  # a 0-d tensor or array
    raise MetricTypeError(f"{algorithm}: the objective must return a number (the metric), "
                          f"got {value!r}")


class DistributedMixIn:
    """Collectives over ``torch.distributed`` (imported only here)."""

    def __init__(self, rank: int = 0, world_size: int = 1, backend: str = "pytorch"):
        if backend != "pytorch":
            raise ValueError(f"backend must be 'pytorch', not {backend!r}")
        self.rank = rank
        self.world_size = world_size
        self.backend = backend

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def __dist(self):
        import torch.distributed as dist

        if self.world_size > 1 and not dist.is_initialized():
            raise AtoError("torch.distributed is not initialised: call "
                           "dist.init_process_group(...) before the search")
        return dist

    def broadcast_object_from_root(self, obj):
        if self.world_size == 1:
            return obj
        holder = [obj]
        self.__dist().broadcast_object_list(holder, src=0)
        return holder[0]

    def all_gather_object(self, obj) -> list:
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        self.__dist().all_gather_object(out, obj)
        return out

    def destroy(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class DistributedHyperOpt(DistributedMixIn, HyperOpt):
    def __init__(self, scope, search_spaces, tracker=None, mode: str = "max", rank: int = 0,
                 world_size: int = 1, backend: str = "pytorch", **options):
        DistributedMixIn.__init__(self, rank, world_size, backend)
        HyperOpt.__init__(self, scope, search_spaces, tracker, mode, **options)
