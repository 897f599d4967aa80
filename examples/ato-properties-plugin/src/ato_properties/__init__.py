"""`.properties` config files for Ato: ``dotted.key = value``, one per line."""
