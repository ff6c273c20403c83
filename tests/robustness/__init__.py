"""The robustness corpus: generated hostile inputs, each one clean error (exit 2)."""
