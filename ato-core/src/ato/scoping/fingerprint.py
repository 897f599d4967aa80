"""Code and result fingerprints for ``scope.trace`` / ``scope.runtime_trace``.

A static fingerprint hashes a canonical form of the function's code object — bytecode,
constants (nested code objects recursively), names and variable names — leaving out the
file name, line numbers and memory addresses, so it is the same in every process and does
not change when the function merely moves.
"""

from __future__ import annotations

import types


def _canonical(code: types.CodeType) -> tuple:
    consts = tuple(
        ("code", _canonical(c)) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c))
        for c in code.co_consts
    )
    return (code.co_code, consts, code.co_names, code.co_varnames, code.co_freevars,
            code.co_cellvars, code.co_name, code.co_argcount, code.co_kwonlyargcount)


def static_fingerprint(func) -> str:
    import hashlib

    code = getattr(func, "__code__", None)
    if code is None:
        raise TypeError(f"cannot fingerprint {func!r}: it has no Python code object")
    return hashlib.sha256(repr(_canonical(code)).encode("utf-8")).hexdigest()


def runtime_fingerprint(value) -> str:
    import hashlib
    import pickle

    return hashlib.sha256(pickle.dumps(value, protocol=4)).hexdigest()
