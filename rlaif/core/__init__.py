"""The lowest layer: errors, names, the row schema, secrets, input files, gold pairs, progress, processes, chat templates. Imports nothing from rlaif."""
