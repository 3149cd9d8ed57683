"""Judges: templates (prompts/*.j2) + a parser + sampling settings; no judge is code alone."""
