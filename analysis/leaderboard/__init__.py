"""The warmup leaderboard (issue 21): warmup methods (entries) scored on shared workloads. spec: the workload and
entry YAMLs (conf/leaderboard/); runs: launching them and the runs table; scores and report: the metrics, scores and
report files. `python -m analysis.leaderboard` (make leaderboard) runs it; docs/leaderboard.md says how."""
