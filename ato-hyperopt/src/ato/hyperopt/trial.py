"""What a multi-fidelity trial's objective sees so that a promoted configuration continues
instead of training again from scratch.

A multi-fidelity algorithm (HyperBand, ``multi_hyperband``, ``bohb``, ``asha``, or a
third-party one that sets ``MULTI_FIDELITY = True``) evaluates one configuration at a
rising budget: 1 epoch, then 3, then 9.  Before each evaluation :func:`prepare` fills three
reserved keys of the trial's config, next to ``__budget__``:

``__trial__``
    the configuration's identity in the study, ``<config hash>-b<bracket>``: the same on
    every rung, on every worker and in a resumed study (the hash is
    :func:`ato.hyperopt.study.config_hash`, over the searched values only).
``__resume_budget__``
    the budget this configuration already reached in this bracket (``0`` for a new one),
    in the representation of ``__budget__`` (:func:`ato.hyperopt.budgets.plain`).  The
    objective reloads its state at ``__resume_budget__`` and trains up to ``__budget__``.
    A configuration asked again for a budget it already reached (HyperBand's
    re-evaluation of its winner, a sampler proposing the same values twice in one bracket)
    gets ``__resume_budget__ == __budget__``: reload, train nothing, evaluate (if the
    earlier trial of a batch has not saved its checkpoint yet, train as for a new one).
``__checkpoint_dir__``
    an absolute directory path (a ``str``), created before the objective runs, private to
    this identity: ``<root>/<study id>/<config hash>-b<bracket>``.

The root is the search option ``checkpoint_root=`` when given; otherwise
``<directory of the SQLite file>/ato-studies`` for a tracker on a SQLite file (so every
worker of a study on one shared filesystem finds the same directory); otherwise — a
PostgreSQL or other server tracker — ``./ato-studies`` under the working directory the
search started in (give ``checkpoint_root`` on a shared filesystem when workers run on
several machines); and for a search without a tracker, a new temporary directory
(``tempfile.mkdtemp(prefix='ato-study-')``), kept after the search so that the winner's
checkpoint can be read (``result.config.__checkpoint_dir__``).

The algorithms charge the *increment*: a configuration promoted from 3 to 9 epochs costs 6
(``budget_used``, ``total_budget``, the progress lines) and its tracker run carries the tag
``resumed_from:3``.  An objective that ignores these keys still works; it then trains
from scratch at every rung, paying more than the search charges.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ato.hyperopt import budgets
from ato.hyperopt.study import config_hash

__all__ = ["RESERVED_KEYS", "Attempt", "Continuation", "Continuations", "attempt", "checkpoint_root",
           "fill", "prepare", "state_budget"]

RESERVED_KEYS = ("__trial__", "__resume_budget__", "__checkpoint_dir__")


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (``sqlite:///rel.db``, ``sqlite:////abs/x.db``,
    ``sqlite+pysqlite:///...``), or ``None`` for another backend or an in-memory one."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0].lower() != "sqlite":
        return None
    path = rest[1:] if rest.startswith("/") else rest  # 'sqlite:///x' -> '/x' -> 'x'
    path = path.split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        return None
    if path.startswith("file:"):
        path = path[5:]
    return Path(path)


def checkpoint_root(tracker=None, option=None, study: str | None = None) -> Path:
    """The absolute directory under which a study's checkpoint directories live.

    ``option`` (the search's ``checkpoint_root=``, a path) wins; else, for a ``tracker``
    on a SQLite file, ``<its directory>/ato-studies``; else, for any other tracker,
    ``./ato-studies``; else (no tracker) a new temporary directory named after ``study``.
    Relative paths are resolved against the current working directory now.  Raises
    ``TypeError`` when ``option`` is not a path.
    """
    if option is not None:
        if not isinstance(option, (str, os.PathLike)) or not str(option):
            raise TypeError(f"checkpoint_root must be a directory path, got {option!r}")
        return Path(option).expanduser().resolve()
    if tracker is None:
        prefix = f"ato-study-{study}-" if study else "ato-study-"
        return Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    url = getattr(tracker, "url", None)
    if not url:
        try:
            from ato.tracking import url_of

            url = url_of(tracker.config)
        except (AttributeError, KeyError):
            url = None
    db = _sqlite_file(str(url)) if url else None
    if db is not None:
        return (db.expanduser().resolve().parent / "ato-studies")
    return Path("ato-studies").resolve()


@dataclass(frozen=True)
class Continuation:
    """What :func:`prepare` gave one evaluation: the identity, the exact budget already
    reached (``resume_budget <= budget``), the exact budget asked for and the directory."""

    trial: str
    resume_budget: Fraction
    budget: Fraction
    directory: Path

    @property
    def increment(self) -> Fraction:
        """Resource units this evaluation adds (what the algorithm charges)."""
        return self.budget - self.resume_budget


class Continuations:
    """The budget each configuration of one search reached, per identity (thread-safe).

    ``root`` is the directory from :func:`checkpoint_root` (computed on first use when
    ``root`` is a callable).  An identity reaches a budget when an evaluation at that
    budget *completes* (:meth:`complete`, called by the base for every trial whose metric
    it obtains: run here, run by another worker, or read back from the tracker in a
    resumed study), so a failed or retried evaluation resumes from where the last
    completed one left off, and a study resumed in a new process replays its trials and
    arrives at the same ledger and the same directories.
    """

    def __init__(self, study: str, names, root):
        self.study = str(study)
        self.names = list(names)
        self._root = root
        self._reached: dict[str, Fraction] = {}
        self._resumed: dict[tuple[str, Fraction], Fraction] = {}
        self._given: set[tuple[str, Fraction]] = set()  # prepared, not failed
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        with self._lock:
            if callable(self._root):
                self._root = self._root()
            return self._root

    def reached(self, identity: str) -> Fraction:
        """The budget ``identity`` reached so far (0 when never evaluated)."""
        with self._lock:
            return self._reached.get(identity, Fraction(0))

    def resumed_from(self, identity: str, budget) -> Fraction:
        """The budget the first evaluation of ``identity`` at ``budget`` resumed from (0
        when it was never prepared; a repeat resumes from ``budget`` itself)."""
        with self._lock:
            return self._resumed.get((identity, budgets.exact(budget)), Fraction(0))

    def _prepared(self, identity: str, budget: Fraction) -> Fraction:
        with self._lock:
            if (identity, budget) in self._given:
                # asked again for a budget it was already given (a repeated proposal in
                # one batch, a re-evaluation): the earlier trial's checkpoint serves
                return budget
            resume = min(self._reached.get(identity, Fraction(0)), budget)
            self._resumed[(identity, budget)] = resume
            self._given.add((identity, budget))
            return resume

    def failed(self, continuation: Continuation) -> None:
        """Record that ``continuation``'s evaluation failed: the configuration did not
        reach its budget, and a later trial at that budget starts from what it had."""
        with self._lock:
            self._given.discard((continuation.trial, continuation.budget))

    def complete(self, continuation: Continuation) -> None:
        """Record that ``continuation``'s evaluation completed: its identity reached its
        budget (a lower budget never lowers what was reached)."""
        with self._lock:
            if continuation.budget > self._reached.get(continuation.trial, Fraction(0)):
                self._reached[continuation.trial] = continuation.budget


def fill(config, continuations: Continuations, budget, resume_budget, bracket: int = 0,
         chash: str | None = None) -> Continuation:
    """Fill the keys like :func:`prepare`, with a ``resume_budget`` the caller knows (an
    asynchronous algorithm whose rule says what a promoted configuration completed, as
    ASHA in a shared study does); the ledger is not consulted."""
    exact_budget = budgets.exact(budget)
    resume = min(budgets.exact(resume_budget), exact_budget)
    chash = chash or config_hash(config, continuations.names)
    identity = f"{chash}-b{int(bracket)}"
    directory = _directory(continuations, identity)  # made by the first evaluation (Attempt)
    config["__trial__"] = identity
    config["__resume_budget__"] = budgets.plain(resume)
    config["__checkpoint_dir__"] = str(directory)
    return Continuation(identity, resume, exact_budget, directory)


def unwritable(root) -> str | None:
    """Why ``root`` cannot hold checkpoint directories, or ``None`` when it can: it is
    created (with its parents) when missing, as the first trial would, and a probe file
    is written in it and removed.  Safe when many workers check one root at once."""
    root = Path(root)
    try:
        at = root
        while not at.exists() and at.parent != at:
            at = at.parent
        if at.exists() and not at.is_dir():
            return f"{at} is a file, not a directory"
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ato-probe-", dir=root)
        os.close(fd)
        os.unlink(probe)
        return None
    except OSError as e:
        return f"{e.strerror or e} ({getattr(e, 'filename', None) or root})"


#: The longest study id in bytes (UTF-8): one directory name (NAME_MAX) and the
#: studies.name column both hold 255.
MAX_NAME_BYTES = 255


def is_path_name(name: str) -> bool:
    """Whether ``name`` is safe as one directory name under a checkpoint root: not empty,
    not ``.`` or ``..``, no ``/`` or ``\\`` (so never absolute, never escaping), no control
    characters."""
    return (isinstance(name, str) and name not in ("", ".", "..")
            and not any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in name))


def suggest_path_name(name: str) -> str:
    """``name`` with every unsafe character replaced by ``-`` (for error messages)."""
    cleaned = "".join("-" if c in "/\\" or ord(c) < 32 or ord(c) == 127 else c
                      for c in str(name)).strip("-.")
    return cleaned or "my-study"


def _directory(continuations: Continuations, identity: str) -> Path:
    """``<root>/<study>/<identity>``, after checking that neither part leaves the root."""
    for what, name in (("study id", continuations.study), ("trial identity", identity)):
        if not is_path_name(name):
            raise ValueError(f"the {what} {name!r} cannot name a checkpoint directory under "
                             f"{continuations.root} (no '/', '\\', '.', '..' or control "
                             f"characters)")
    return continuations.root / continuations.study / identity


def _make(directory: Path, identity: str) -> None:
    """Create ``directory`` (and its parents) for the evaluation of ``identity``, or
    ``OSError`` naming it and the fix."""
    if directory.is_dir():
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create the checkpoint directory {directory} of trial "
                      f"{identity} ({e.strerror or e}); pass checkpoint_root= a "
                      f"writable directory") from e


def prepare(config, continuations: Continuations, budget, bracket: int = 0,
            chash: str | None = None) -> Continuation:
    """Fill ``config['__trial__']``, ``config['__resume_budget__']`` and
    ``config['__checkpoint_dir__']`` for one evaluation of ``config`` at ``budget`` (exact)
    in ``bracket``, and return the :class:`Continuation`.  Nothing is created here: the
    directory appears when an evaluation of the configuration completes (:class:`Attempt`),
    so a search whose evaluations all fail leaves none.

    ``chash`` is the configuration's hash when the caller has it already.
    """
    exact_budget = budgets.exact(budget)
    chash = chash or config_hash(config, continuations.names)
    identity = f"{chash}-b{int(bracket)}"
    resume = continuations._prepared(identity, exact_budget)
    directory = _directory(continuations, identity)  # made by the first evaluation (Attempt)
    config["__trial__"] = identity
    config["__resume_budget__"] = budgets.plain(resume)
    config["__checkpoint_dir__"] = str(directory)
    return Continuation(identity, resume, exact_budget, directory)


# ---------------------------------------------------------------------- attempts
#
# The directory ``<root>/<study>/<identity>`` (what ``__checkpoint_dir__`` names outside
# a call) holds the configuration's *state*: the files of the first evaluation that
# reached the highest budget, with ``STATE_FILE`` naming that budget.  An evaluation never
# writes there: :func:`attempt` gives the objective a fresh directory of its own under
# ``<root>/<study>/.attempts/``, filled with a copy of the state it resumes from, and
# only when the objective returns a metric does that directory become the state — if its
# budget is above the state's (a worker wrongly taken for dead, finishing a budget that
# another worker already passed, changes nothing).  The swap takes an exclusive
# ``fcntl`` lock on ``<root>/<study>/.attempts/<identity>.lock`` and copies take a shared
# one, so a copy never sees half a swap; a worker killed in the middle of a swap leaves
# the old state under ``<identity>.old``, which the next reader puts back.  While an
# evaluation runs it holds an exclusive lock on ``.attempts/<its directory>.alive``; the
# kernel drops that lock when the process dies, however it dies, so the next evaluation
# in the study on the same host removes the directories of dead ones (a preempted job's
# half-written checkpoint copy) instead of leaving them to fill the disk.  Only the same
# host's: the file names its host, because on a network file system mounted with
# host-local locks (NFS ``local_lock=flock``, Lustre ``localflock``) another host's lock
# looks free while its evaluation runs.

STATE_FILE = ".ato-state"


class _Lock:
    """An ``fcntl`` lock on ``path`` (exclusive or shared); no lock where there is no
    ``fcntl`` (Windows: one machine's workers then rely on the budget check alone)."""

    def __init__(self, path: Path, exclusive: bool):
        self.path, self.exclusive, self.fd = path, exclusive, None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


def _host() -> bytes:
    import socket

    return socket.gethostname().encode()


def _hold_alive(path: Path):
    """Create ``path`` naming this host and hold an exclusive ``fcntl`` lock on it until
    the returned descriptor is closed (``None`` where there is no ``fcntl``)."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, _host())
    return fd


def _sweep_dead(attempts: Path) -> None:
    """Remove the attempt directories under ``attempts`` whose evaluation died on this
    host: those whose ``.alive`` file names this host and whose lock nobody holds.  A live
    evaluation's lock is never free, so its directory is never touched."""
    import fcntl
    import shutil

    host = _host()
    for alive in attempts.glob("*.alive"):
        try:
            fd = os.open(alive, os.O_RDWR)
        except OSError:  # its evaluation ended meanwhile
            continue
        try:
            if os.read(fd, len(host) + 1) != host:  # another host's, or not written yet
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: that evaluation is running
                continue
            shutil.rmtree(attempts / alive.name[:-len(".alive")], ignore_errors=True)
            alive.unlink(missing_ok=True)
        finally:
            os.close(fd)


def state_budget(directory: Path) -> Fraction | None:
    """The budget the state in ``directory`` reached (``None``: no state yet, or a
    directory written before states were marked)."""
    try:
        return budgets.exact((Path(directory) / STATE_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _recover(state: Path) -> None:
    """Put back the state a worker killed mid-swap left under ``<identity>.old``."""
    import shutil

    old = state.parent / ".attempts" / f"{state.name}.old"
    if not old.is_dir():
        return
    if state_budget(state) is None and state_budget(old) is not None:
        # killed between the two renames (the empty directory prepare() makes aside)
        shutil.rmtree(state, ignore_errors=True)
        os.replace(old, state)
    else:  # killed after the second rename: the new state is in place
        shutil.rmtree(old, ignore_errors=True)


class Attempt:
    """One evaluation's own checkpoint directory (see :func:`attempt`)."""

    def __init__(self, config, state: Path, budget: Fraction):
        self.config, self.state, self.budget = config, state, budget
        self.directory: Path | None = None
        self._alive: tuple[Path, int] | None = None  # this evaluation's lock file, held

    def __enter__(self):
        import shutil
        import uuid

        config, state = self.config, self.state
        attempts = state.parent / ".attempts"
        self.directory = attempts / f"{state.name}-{uuid.uuid4().hex[:12]}"
        alive = attempts / f"{self.directory.name}.alive"
        for tries in range(5):  # another evaluation may remove an empty .attempts meanwhile
            _make(attempts, state.name)
            try:
                fd = _hold_alive(alive)
                break
            except FileNotFoundError:
                if tries == 4:
                    raise
        if fd is not None:
            self._alive = alive, fd
            _sweep_dead(attempts)
        try:
            resume = budgets.exact(config.get("__resume_budget__", 0))
            if (attempts / f"{state.name}.old").exists():
                with _Lock(attempts / f"{state.name}.lock", exclusive=True):
                    _recover(state)
            if not state.exists() and not (attempts / f"{state.name}.old").exists():
                # no state to copy: no lock (and no lock file) needed.  A state that a
                # concurrent evaluation commits just now is not seen: this one starts
                # afresh, which is what it would do had it started a moment earlier
                self.directory.mkdir()
                resume = Fraction(0)
                config["__resume_budget__"] = budgets.plain(resume)
                config["__checkpoint_dir__"] = str(self.directory)
                return self
            with _Lock(attempts / f"{state.name}.lock", exclusive=False):
                reached = state_budget(state)
                if reached is None and state.is_dir() and any(
                        p.name != STATE_FILE for p in state.iterdir()):
                    reached = resume  # a state written before states were marked
                if reached is not None and 0 < reached <= self.budget:
                    shutil.copytree(state, self.directory, symlinks=True)
                    resume = reached
                else:  # nothing to continue from, or a state past this budget: start afresh
                    self.directory.mkdir()
                    resume = Fraction(0)
        except BaseException:  # e.g. no space left copying the state: leave nothing
            self.__exit__(None, None, None)
            raise
        config["__resume_budget__"] = budgets.plain(resume)
        config["__checkpoint_dir__"] = str(self.directory)
        return self

    def commit(self) -> bool:
        """Make this attempt the configuration's state if its budget is above the
        state's; returns whether it did."""
        import shutil

        state, attempts = self.state, self.state.parent / ".attempts"
        tmp = self.directory / f"{STATE_FILE}.tmp"
        tmp.write_text(budgets.text(self.budget))
        os.replace(tmp, self.directory / STATE_FILE)
        with _Lock(attempts / f"{state.name}.lock", exclusive=True):
            _recover(state)
            reached = state_budget(state)
            if reached is not None and reached >= self.budget:
                return False
            old = attempts / f"{state.name}.old"
            if state.is_dir():
                os.replace(state, old)
            os.replace(self.directory, state)
            shutil.rmtree(old, ignore_errors=True)
            self.directory = None
            return True

    def __exit__(self, *exc):
        import shutil

        self.config["__checkpoint_dir__"] = str(self.state)
        if self.directory is not None:  # failed, or not above the state: drop it
            shutil.rmtree(self.directory, ignore_errors=True)
        if self._alive is not None:
            alive, fd = self._alive
            alive.unlink(missing_ok=True)
            os.close(fd)
            self._alive = None
            # nothing of the study left here (its evaluations failed): no empty
            # directories either.  rmdir removes only an empty one; an evaluation starting
            # meanwhile makes .attempts again (see __enter__)
            for empty in (self.state.parent / ".attempts", self.state.parent):
                try:
                    empty.rmdir()
                except OSError:
                    break


def attempt(config) -> Attempt | None:
    """For a config :func:`prepare` (or :func:`fill`) filled, the context in which the
    objective runs: on entry ``config['__checkpoint_dir__']`` becomes a new directory of
    this evaluation only, holding a copy of the configuration's state, and
    ``config['__resume_budget__']`` the budget of that copy (``0``, with an empty
    directory, when there is no state at or below ``__budget__``); call
    :meth:`Attempt.commit` when the objective returned a metric; on exit
    ``__checkpoint_dir__`` names the state directory again and an uncommitted attempt
    directory is removed.  ``None`` for a config without these keys."""
    state, budget = config.get("__checkpoint_dir__"), config.get("__budget__")
    if state is None or config.get("__trial__") is None or budget is None:
        return None
    return Attempt(config, Path(state), budgets.exact(budget))
