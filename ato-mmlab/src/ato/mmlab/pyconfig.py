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


class LazyImport:
    """A name a config imports from a module outside the standard library, as MMEngine's
    lazy import: the module is never imported.  Attribute access extends the dotted path
    (``torch.optim.SGD``); used as a value, the config holds that path as text; calling it
    is an error."""

    __slots__ = ("dotted",)

    def __init__(self, dotted: str):
        object.__setattr__(self, "dotted", dotted)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return LazyImport(f"{self.dotted}.{name}")

    def __setattr__(self, name, value):
        raise TypeError(f"{self.dotted} is not imported (Ato reads configs without importing "
                        f"modules outside the standard library); it cannot be changed")

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.dotted} cannot be called in a config: Ato reads configs without "
                        f"importing modules outside the standard library (as MMEngine's lazy "
                        f"import); as a value it stands for the text {self.dotted!r}")

    def __eq__(self, other):
        return isinstance(other, LazyImport) and other.dotted == self.dotted

    def __hash__(self):
        return hash(self.dotted)

    def __str__(self):
        return self.dotted

    def __repr__(self):
        return f"<not imported: {self.dotted}>"

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


LAZY_NAME = "__ato_lazy_import__"


class LazyImports(ast.NodeTransformer):
    """Rewrites imports of modules outside the standard library into
    ``name = __ato_lazy_import__('module.name')``, and records the names bound (they are
    not config values).  Standard-library imports stay real imports."""

    def __init__(self, path: str):
        self.path = path
        self.names: set = set()

    def _assign(self, name: str, dotted: str, node):
        self.names.add(name)
        call = ast.Call(ast.Name(LAZY_NAME, ast.Load()), [ast.Constant(dotted)], [])
        return ast.copy_location(ast.Assign([ast.Name(name, ast.Store())], call), node)

    def visit_Import(self, node):
        real = [a for a in node.names if a.name.split(".")[0] in sys.stdlib_module_names]
        out = [ast.copy_location(ast.Import(real), node)] if real else []
        for alias in node.names:
            if alias not in real:
                top = alias.name.split(".")[0]
                out.append(self._assign(alias.asname or top, alias.name if alias.asname else top, node))
        return out

    def visit_ImportFrom(self, node):
        if node.level:
            raise ConfigFileError(self.path, "relative import: MMEngine's pure-Python configs "
                                             "(`with read_base(): from .._base_ import ...`) are "
                                             "not supported; name the bases in _base_", node.lineno)
        if node.module.split(".")[0] in sys.stdlib_module_names:
            return node
        out = []
        for alias in node.names:
            if alias.name == "*":
                raise ConfigFileError(self.path, f"from {node.module} import *: a config can import "
                                                 f"only named objects from a module outside the "
                                                 f"standard library", node.lineno)
            out.append(self._assign(alias.asname or alias.name, f"{node.module}.{alias.name}", node))
        return out


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
