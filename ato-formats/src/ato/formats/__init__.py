"""YAML, TOML and XYZ config formats, registered through ``ato_register_formats``.

The classes are imported on first access (PEP 562), so that loading the plugin (which
every ``ato`` command does) does not import PyYAML and the three modules.
"""

from importlib import import_module

__all__ = ["YAMLFormat", "TOMLFormat", "XYZFormat"]
_MODULES = {"YAMLFormat": "ato.formats.yaml", "TOMLFormat": "ato.formats.toml",
            "XYZFormat": "ato.formats.xyz"}


def __getattr__(name: str):
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'ato.formats' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
