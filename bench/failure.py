"""What a failed run's result.json says about the failure: one line, with out-of-memory named as such."""

from __future__ import annotations

import torch

_OOM_TEXT = ("out of memory", "can't allocate memory")


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError / MemoryError."""
    if isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(e, RuntimeError) and any(t in str(e).lower() for t in _OOM_TEXT)


def describe_failure(e: BaseException) -> dict:
    """{'error': one line, 'error_type': 'out_of_memory' | 'disk_full' | 'read_only' | 'exception'} for a failed
    result.json."""
    from bench.runfolder import StorageError

    if isinstance(e, StorageError):  # the machine's failure, not the run's: disk_full | read_only
        return {"error": str(e), "error_type": e.kind}
    first = (str(e).strip().splitlines() or [""])[0]
    message = f"{type(e).__name__}: {first}" if first else type(e).__name__
    if is_out_of_memory(e):
        hint = "lower batch_size, eval_batch_size or the model size, or ask for a larger device"
        return {"error": f"out of memory: {message} ({hint})", "error_type": "out_of_memory"}
    return {"error": message, "error_type": "exception"}
