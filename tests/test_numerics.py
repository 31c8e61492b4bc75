"""Numerics (bench/numerics.py): precision, deterministic and compile are set as configured, recorded in result.json,
refused in one line when wrong; bf16 lowers the training forward only, the sharpness stays FP32."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from bench.config import validate
from bench.errors import ConfigError
from bench.numerics import Numerics
from bench.sweeps.preflight import check_command
from bench.train import Trainer, run
from tests.conftest import compose_cfg
from tests.helpers import subprocess_env

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: runs in make gpu-check")


@pytest.fixture(autouse=True)
def restore_flags():
    """The flags are process-global: leave them as the other tests expect."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
    )
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2:4]
    torch.use_deterministic_algorithms(saved[4])


def trainer(tmp_path, *overrides, tiny=()):
    from bench.runfolder.store import RunStore

    return Trainer(validate(compose_cfg(*tiny, *overrides)), RunStore(tmp_path))


def test_fp32_turns_tf32_off_explicitly(tmp_path, tiny):
    torch.backends.cuda.matmul.allow_tf32 = True  # as another run in this process (or a user) may have left them
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    t = trainer(tmp_path, tiny=tiny)
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.benchmark is False
    assert t.extras["precision"] == "fp32" and not t.extras["tf32_matmul"] and not t.extras["tf32_cudnn"]


def test_tf32_is_on_during_the_training_step_only(tmp_path, tiny):
    t = trainer(tmp_path, "precision=tf32", tiny=tiny)
    seen = []
    t.model.register_forward_hook(lambda *_: seen.append(torch.backends.cuda.matmul.allow_tf32))
    t.train_step(1)
    assert seen == [True] and t.extras["tf32_matmul"] and t.extras["tf32_cudnn"]
    t.evaluate()  # outside the step: FP32
    assert seen[1:] == [False] and torch.backends.cudnn.allow_tf32 is False


def test_settings_are_recorded_in_result_json(tmp_path, tiny):
    run(compose_cfg(*tiny, "precision=bf16", "deterministic=true"), tmp_path)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "completed"
    assert result["precision"] == "bf16" and result["deterministic"] is True and result["compile"] is False
    assert result["tf32_matmul"] is False and result["tf32_cudnn"] is False
    assert result["autocast_dtype"] == "bfloat16"
    assert result["device_name"] and result["device"] == "cpu"


@pytest.mark.parametrize("value", ["fp16", "FP32", "double"])
def test_bad_precision_is_refused_in_one_line(value):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg(f"precision={value}"))
    assert str(e.value) == f"precision={value}: must be one of fp32, tf32, bf16"


@pytest.mark.parametrize("arg,key", [("deterministic=maybe", "deterministic"), ("precision=fp16", "precision=fp16")])
def test_bad_values_are_one_line_before_training(arg, key):
    """`python launch.py ARG` is refused by the launch's own check (bench.sweeps.preflight.check_command: composition,
    then
    what the Preflight callback runs before the run folder is made), in one line naming the key. A bad value reaches
    the command line as tests/test_cli.py's do (it checks the printed line, exit code and missing folder once)."""
    with pytest.raises(ConfigError) as e:
        check_command([arg])
    assert key in str(e.value) and "\n" not in str(e.value)


def test_deterministic_sets_and_clears_the_global_switch(tmp_path, tiny, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    trainer(tmp_path, "deterministic=true", tiny=tiny)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    trainer(tmp_path, "deterministic=false", tiny=tiny)  # the next run in the same process does not inherit it
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


def test_deterministic_run_equals_the_default_run_on_cpu(tmp_path, tiny):
    a = run(compose_cfg(*tiny), tmp_path / "a")
    b = run(compose_cfg(*tiny, "deterministic=true"), tmp_path / "b")
    assert a["final_train_loss"] == b["final_train_loss"] and a["final_test_loss"] == b["final_test_loss"]


def test_bf16_lowers_the_forward_but_not_the_sharpness(tmp_path, tiny):
    """The training forward runs in bfloat16; the loss is FP32; the sharpness at step 1 (theta0, first batch) is
    measured in FP32 and equals the fp32 run's exactly."""
    t = trainer(tmp_path, "precision=bf16", tiny=tiny)
    dtypes = []
    t.model.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    t.train_step(1)
    assert dtypes == [torch.bfloat16]
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in t.model.parameters())

    measure = ("measure.every=5", "measure.tol=1e-6")
    fp32 = run(compose_cfg(*tiny, *measure), tmp_path / "fp32")
    bf16 = run(compose_cfg(*tiny, *measure, "precision=bf16"), tmp_path / "bf16")
    a = pd.read_csv(tmp_path / "fp32" / "metrics.csv").set_index("step")
    b = pd.read_csv(tmp_path / "bf16" / "metrics.csv").set_index("step")
    assert b.loc[1, "sharpness"] == a.loc[1, "sharpness"]
    assert b.loc[1, "batch_loss"] != a.loc[1, "batch_loss"], "bf16 changes the training forward"
    assert abs(b.loc[1, "batch_loss"] - a.loc[1, "batch_loss"]) < 1e-2 * a.loc[1, "batch_loss"]
    assert fp32["status"] == bf16["status"] == "completed"


def test_numerics_refuses_an_unknown_precision_when_used_directly():
    with pytest.raises(ValueError, match="precision=fp8: must be one of"):
        Numerics("fp8", False, False, torch.device("cpu"))


@pytest.mark.slow  # inductor compiles C++ with gcc: about a minute on a busy 2-core machine
def test_compile_trains_like_eager_on_cpu(tmp_path, tiny):
    eager = run(compose_cfg(*tiny), tmp_path / "eager")
    compiled = run(compose_cfg(*tiny, "compile=true"), tmp_path / "compiled")
    assert compiled["compile"] is True and compiled["status"] == "completed"
    assert compiled["final_train_loss"] == pytest.approx(eager["final_train_loss"], rel=1e-4)
    assert compiled["final_test_loss"] == pytest.approx(eager["final_test_loss"], rel=1e-4)


def test_the_deterministic_flag_is_set_without_torchinductor_unless_the_run_compiles():
    """Numerics.setup sets torch's deterministic flag without importing TorchInductor's config (about a second of
    every run's start-up); a run that compiles sets it through torch.use_deterministic_algorithms, Inductor's too."""
    code = (
        "import sys, torch\n"
        "from bench.numerics import Numerics\n"
        "Numerics('fp32', True, False, torch.device('cpu')).setup()\n"
        "print(torch.are_deterministic_algorithms_enabled(), 'torch._inductor.config' in sys.modules)\n"
        "Numerics('fp32', True, True, torch.device('cpu')).setup()\n"
        "import torch._inductor.config as inductor\n"
        "print(torch.are_deterministic_algorithms_enabled(), inductor.deterministic)\n"
        "Numerics('fp32', False, False, torch.device('cpu')).setup()\n"
        "print(torch.are_deterministic_algorithms_enabled(), inductor.deterministic)\n"
    )
    env = subprocess_env()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["True False", "True True", "False False"], out


# --- CUDA (make gpu-check) -------------------------------------------------------------------------------------


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("precision,tf32", [("fp32", False), ("tf32", True), ("bf16", False)])
def test_precision_flags_on_cuda(tmp_path, tiny, precision, tf32):
    tiny = [o for o in tiny if o != "device=cpu"] + ["device=cuda"]
    t = trainer(tmp_path, f"precision={precision}", tiny=tiny)
    seen = []
    t.model.register_forward_hook(
        lambda m, i, out: seen.append(
            (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, out.dtype)
        )
    )
    t.train_step(1)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    assert seen == [(tf32, tf32, dtype)]
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    assert t.extras["device_name"] == torch.cuda.get_device_name(0)
