"""The local dataset store: immutable, content-addressed versions."""
