"""Python config files (``.py``), as OpenMMLab writes them.

**A Python config is a program: loading it executes it**, exactly as MMEngine does.  Only
load configs you trust.  The config is every module-level name that does not start with
``__`` and is not a module or a Python function.  A syntax or name error names the file and
the line.
"""

from __future__ import annotations

import ast
import sys
import traceback
import types

from ato.errors import ConfigFileError


def _collect(namespace: dict, hidden=()) -> dict:
    return {k: v for k, v in namespace.items()
            if not k.startswith("__") and k not in hidden
            and not isinstance(v, (types.ModuleType, types.FunctionType))}


def _error_line(path: str, tb) -> int | None:
    line = None
    for frame in traceback.extract_tb(tb):
        if frame.filename == path:
            line = frame.lineno
    return line


def parse(text: str, path: str) -> ast.Module:
    try:
        return ast.parse(text, filename=path)
    except SyntaxError as e:
        raise ConfigFileError(path, f"syntax error: {e.msg}", e.lineno, e.offset) from None


def execute(tree: ast.Module, path: str, namespace: dict | None = None, hidden=()) -> dict:
    """Run a parsed config and collect its values."""
    namespace = {} if namespace is None else namespace
    try:
        code = compile(tree, path, "exec")
        exec(code, namespace)  # noqa: S102 — executing a Python config is the format
    except ConfigFileError:
        raise
    except Exception as e:
        line = _error_line(path, sys.exc_info()[2])
        raise ConfigFileError(path, f"{type(e).__name__}: {e}", line) from None
    return _collect(namespace, hidden)


def literal_value(node: ast.expr):
    """The value of a literal expression, read without running it: what
    ``ast.literal_eval`` accepts, plus literals joined with ``+`` (``['a.py'] + ['b.py']``).
    Raises ``ValueError`` for anything else."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = literal_value(node.left), literal_value(node.right)
        try:
            return left + right
        except TypeError:
            raise ValueError(f"cannot add {type(left).__name__} and {type(right).__name__}") from None
    return ast.literal_eval(node)


class RemoveAssignment(ast.NodeTransformer):
    """Drops module-level ``name = ...`` statements (the ``_base_`` list)."""

    def __init__(self, name: str):
        self.name = name

    def visit_Assign(self, node):
        if any(isinstance(t, ast.Name) and t.id == self.name for t in node.targets):
            return None
        return node


class PythonConfigFormat:
    """``.py`` configs for ``ADict.from_file`` (executed; see the module docstring)."""

    PLUGIN_NAME = "python"
    suffixes = (".py",)

    @staticmethod
    def loads(text: str, path: str, **kwargs):
        return execute(parse(text, path), path)

    @staticmethod
    def dumps(data, path: str, **kwargs) -> str:
        lines = [f"{k} = {v!r}" for k, v in data.items() if isinstance(k, str) and k.isidentifier()]
        return "\n".join(lines) + "\n"
