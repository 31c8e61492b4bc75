"""Turn run folders into tables and figures. Depends on the run-folder contract alone (bench/runfolder/)."""

from analysis.aggregate import load_metrics, load_runs, load_steps
from analysis.phase import eta_max, phase_grid, plot_phase

__all__ = ["eta_max", "load_metrics", "load_runs", "load_steps", "phase_grid", "plot_phase"]
