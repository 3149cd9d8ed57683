"""Human review of a dataset version: the queue of pairs, the decisions log, the reviewed version."""
