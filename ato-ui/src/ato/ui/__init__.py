"""ato-ui: the local, read-only dashboard over the Ato tracker (``ato ui``).

:func:`ato.ui.app.create_app` builds the ASGI application for a tracker URL;
:mod:`ato.ui.data` is the only module that talks to the tracker.
"""
