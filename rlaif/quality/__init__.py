"""Quality checks behind rlaif.quality.filters: text normalisation and pattern checks (text), MinHash
near-duplicates (dedup), decontamination against an evaluation set (decontam), prompt-level
filtering (prompts) and the length-bias cap (length). Each module is plain functions; the
recipe's FilterSpec says which checks run."""
