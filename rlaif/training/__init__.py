"""Training on dataset versions: SFT, reward model, DPO, KTO, PPO, RLOO, GRPO and RRHF.

`rlaif.training.driver.train` is the one entry point (the CLI `rlaif train` and the Prefect flow
`rlaif-train` are executors of it); each algorithm is a plain function `run(job: TrainJob) -> dict`
named in `rlaif.training.driver.TRAINERS`.
"""

ALGORITHMS = ("sft", "rm", "dpo", "kto", "ppo", "rloo", "grpo", "rrhf")
