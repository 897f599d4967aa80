"""An example third-party Ato plugin: a config format and a tracker backend."""
