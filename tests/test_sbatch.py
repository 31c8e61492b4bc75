"""sbatch's refusals -> one line naming the launcher key (bench/sweeps/sbatch.py), from the texts Slurm 22.05 prints.
tests/test_slurm.py checks the same on the real local cluster."""

import pytest
from submitit.core.utils import FailedJobError

from bench.sweeps.sbatch import explain, refusals

NODE = "sbatch: error: Batch job submission failed: Requested node configuration is not available"
PARAMS = {"mem_gb": 4, "cpus_per_task": 1, "partition": "gpu", "gpus_per_node": None, "timeout_min": 60}


@pytest.mark.parametrize(
    "stderr, change",
    [
        (f"sbatch: error: Memory specification can not be satisfied\n{NODE}", "change hydra.launcher.mem_gb=4 ("),
        ("sbatch: error: Batch job submission failed: More processors requested than permitted",
         "change hydra.launcher.cpus_per_task=1 ("),
        ("sbatch: error: invalid partition specified: gpu\nsbatch: error: Batch job submission failed: Invalid "
         "partition name specified", "change hydra.launcher.partition=gpu ("),
        ("sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification",
         "change hydra.launcher.gpus_per_node=null ("),
        (NODE, "change hydra.launcher.mem_gb=4 or hydra.launcher.cpus_per_task=1 or hydra.launcher.gpus_per_node=null"),
    ],
)  # fmt: skip
def test_each_refusal_names_its_key(stderr, change):
    line = explain(stderr, PARAMS)
    assert line.startswith("sbatch refused the job array: ") and change in line and "\n" not in line
    assert "Batch job submission failed" not in line.split(";")[0] or stderr == NODE


def test_an_unknown_refusal_is_passed_on_without_guessing():
    line = explain("sbatch: error: Something new", PARAMS)
    assert line == "sbatch refused the job array: Something new (see sbatch's message)"


def test_refusal_becomes_one_line_exit(capsys):
    with pytest.raises(SystemExit) as e, refusals(PARAMS):
        raise FailedJobError("sbatch: error: invalid partition specified: gpu")
    assert str(e.value.code).startswith("error: sbatch refused the job array: invalid partition specified: gpu;")
    with pytest.raises(ZeroDivisionError), refusals(PARAMS):  # anything else is not ours to rewrite
        raise ZeroDivisionError


def test_no_cluster_configured_says_how_to_get_one():
    stderr = (
        "sbatch: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n"
        "sbatch: error: fetch_config: DNS SRV lookup failed\n"
        "sbatch: error: _establish_config_source: failed to fetch config\n"
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
    )
    line = explain(stderr, PARAMS)
    assert "failed to fetch config" in line and "source .slurm/env" in line and "change" not in line
