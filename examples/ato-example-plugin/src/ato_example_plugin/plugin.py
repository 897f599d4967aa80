"""The module the entry point names: one function per hook this plugin implements."""

from ato.plugins import hookimpl


@hookimpl
def ato_register_formats():
    from ato_example_plugin.properties import PropertiesFormat

    return PropertiesFormat


@hookimpl
def ato_register_trackers():
    from ato_example_plugin.jsonl_tracker import JSONLinesTracker

    return JSONLinesTracker


@hookimpl
def ato_register_search_algorithms():
    try:  # the algorithm builds on ato-hyperopt, which may not be installed
        from ato_example_plugin.coordinate import CoordinateSearch
    except ImportError:
        return []
    return CoordinateSearch
