"""Model weights: the built-in aliases and their part packages, Hub download, what a model name loads (with the LoRA merge)."""
