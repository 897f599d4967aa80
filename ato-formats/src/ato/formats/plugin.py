"""Entry point of ato-formats (``[project.entry-points.ato] formats``)."""

from ato.plugins import hookimpl


@hookimpl
def ato_register_formats():
    from ato.formats import TOMLFormat, XYZFormat, YAMLFormat

    return [YAMLFormat, TOMLFormat, XYZFormat]
