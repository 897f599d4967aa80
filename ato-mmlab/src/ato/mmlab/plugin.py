"""Entry point of ato-mmlab: two config sources and the ``.py`` config format."""

from ato.plugins import hookimpl


@hookimpl
def ato_register_config_sources():
    from ato.mmlab.hydra import ComposeSource
    from ato.mmlab.openmmlab import MMConfigSource

    return [MMConfigSource, ComposeSource]


@hookimpl
def ato_register_formats():
    from ato.mmlab.pyconfig import PythonConfigFormat

    return PythonConfigFormat
