"""The warmup leaderboard: every warmup method scored on shared workloads (issue 21)."""
