"""rlaif: AI-feedback preference datasets, position-debiased, versioned, ready for training."""

__version__ = "0.1.0"
