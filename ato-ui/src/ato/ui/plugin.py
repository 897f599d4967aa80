"""Entry point of ato-ui: registers the ``ato ui`` subcommand through the command seam."""

from ato.plugins import hookimpl


@hookimpl
def ato_register_commands():
    from ato.ui.command import UICommand

    return UICommand
