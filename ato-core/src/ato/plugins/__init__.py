"""Write an Ato plugin in five lines::

    # my_plugin.py — in pyproject.toml: [project.entry-points.ato] my_plugin = "my_plugin"
    from ato.plugins import hookimpl

    @hookimpl
    def ato_register_formats():
        return MyFormat          # a class with PLUGIN_NAME, suffixes, loads(), dumps()

Check it in your own tests with ``ato.plugins.manager.check_plugin(module) == []``, and see
what Ato made of every installed plugin with ``ato plugins``.  See docs/plugins.md for
every hook.
"""

import pluggy

hookimpl = pluggy.HookimplMarker("ato")

__all__ = ["hookimpl"]
