"""Boundary search against the full grid on the CPU Figure 3 preset muP + cross-entropy
(conf/experiment/cpu/fig3_wrn_mup_xent.yaml: 9 rates x T_wrm {1, 16, 64} x seeds {0, 1} = 54 runs, FCN-4-256 on
mnist5k, 256 steps): see benchmarks/boundary_search.py."""

from __future__ import annotations

from benchmarks.boundary_search import compare


def run(repeats: int = 1) -> dict:
    return compare(["experiment=cpu/fig3_wrn_mup_xent"], "CPU Figure 3 muP + xent, 54 runs")
