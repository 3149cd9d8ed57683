"""The self-improvement loop: iterate (sample, judge, train, evaluate, repeat) and its recipe section."""
