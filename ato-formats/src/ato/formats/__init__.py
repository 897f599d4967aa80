"""YAML, TOML and XYZ config formats, registered through ``ato_register_formats``."""

from ato.formats.toml import TOMLFormat
from ato.formats.xyz import XYZFormat
from ato.formats.yaml import YAMLFormat

__all__ = ["YAMLFormat", "TOMLFormat", "XYZFormat"]
