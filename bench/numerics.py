"""Numerics of a run, set explicitly and recorded: `precision`, `deterministic` and `compile` (config keys).

The stability boundary this harness measures can move with the arithmetic, so nothing is left to PyTorch's defaults
(cuDNN's `allow_tf32` defaults to True while cuBLAS matmuls default to FP32):
- precision=fp32: TF32 off for matmuls and cuDNN convolutions, everywhere.
- precision=tf32: TF32 on for the training step's forward and backward (A100 and later; a no-op on CPU).
- precision=bf16: the training step's forward runs under autocast to bfloat16 (CUDA, and CPU too: torch's CPU
  autocast supports bfloat16); its output is cast back to float32 before the loss, so the loss, the gradients'
  accumulation in the FP32 parameters and the optimizer stay FP32.
Only the training step uses the reduced precision (`Numerics.training()`): evaluation, Hessian-vector products,
Lanczos, lambda0 and the catapult search run outside it, in FP32 with TF32 off (or FP64 with measure.float64).

deterministic=true: `torch.use_deterministic_algorithms(True)`, cuDNN deterministic, and CUBLAS_WORKSPACE_CONFIG
(set here when the user has not; cuBLAS reads it when its first handle is created, so set it before the process's
first CUDA matmul: a run launched in a fresh process is fine). cudnn.benchmark stays off in every mode: its timing-based
algorithm choice would make runs differ.

compile=true: `torch.compile` of the training forward only; the eager model (the same parameters) serves evaluation,
the Hessian-vector products, Lanczos and the catapult search.

All flags are process-global: `setup` sets every one of them, both ways, so that a run never inherits the previous
run's settings in the same process.
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

PRECISIONS = ("fp32", "tf32", "bf16")
CUBLAS_WORKSPACE = ":4096:8"


def _set_tf32(on: bool) -> None:
    # the legacy flags: torch refuses to read them after its newer fp32_precision API has been used, so the harness
    # uses these only
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _use_deterministic_algorithms(mode: bool, compile: bool) -> None:
    """torch.use_deterministic_algorithms(mode), but without importing TorchInductor's config (and with it TorchDynamo:
    about 2.7 CPU-s, a third of a short run's start-up) when nothing compiles: the public call imports it only to set
    its `deterministic` flag, which matters to compiled code alone. Once imported, the flag is set as the call would."""
    import sys

    if compile or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode)
    else:
        torch._C._set_deterministic_algorithms(mode)


class Numerics:
    """Sets the process's numeric flags for one run (`setup`), and wraps the training step (`training`)."""

    def __init__(self, precision: str, deterministic: bool, compile: bool, device: torch.device):
        if precision not in PRECISIONS:  # bench/config.py refuses it first; this guards direct use
            raise ValueError(f"precision={precision}: must be one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.deterministic = deterministic
        self.compile = compile
        self.device = device

    def setup(self) -> None:
        """Set every global flag this run depends on (call before building the model)."""
        _set_tf32(False)  # FP32 outside the training step, whatever the precision
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = self.deterministic
        if self.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        _use_deterministic_algorithms(self.deterministic, self.compile)

    def forward(self, model: torch.nn.Module):
        """The callable the training step uses for the forward: the model, or its compiled version (which shares
        the parameters). Cast back to float32 so that the loss is computed in FP32 under bf16."""
        fn = torch.compile(model) if self.compile else model

        def forward(x: torch.Tensor) -> torch.Tensor:
            with self.autocast():
                out = fn(x)
            return out.float()

        return forward

    def autocast(self):
        """Autocast to bfloat16 under precision=bf16 (a no-op context otherwise)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @contextlib.contextmanager
    def training(self):
        """Around the training step's forward and backward: TF32 on under precision=tf32 (off again after)."""
        tf32 = self.precision == "tf32"
        if tf32:
            _set_tf32(True)
        try:
            yield
        finally:
            if tf32:
                _set_tf32(False)

    def record(self) -> dict:
        """For result.json: the settings and the TF32 flags in effect during a training step."""
        with self.training():
            matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        return {
            "precision": self.precision,
            "deterministic": self.deterministic,
            "compile": self.compile,
            "device_name": device_name(self.device),
            "tf32_matmul": bool(matmul),
            "tf32_cudnn": bool(cudnn),
            "autocast_dtype": "bfloat16" if self.precision == "bf16" else None,
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        }


def build_numerics(cfg, device: torch.device) -> Numerics:
    numerics = Numerics(cfg.precision, cfg.deterministic, cfg.compile, device)
    numerics.setup()
    return numerics
