"""Configuration as data: the recipe and its checks, its sections, the engine table, settings. Imports only rlaif.core and rlaif.quality below it."""
