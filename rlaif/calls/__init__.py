"""The call engine: passes, retries, the request cache, the shard cache, costs and the budget."""
