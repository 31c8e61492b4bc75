"""Test helper (tests/conftest.py `Stops`): on PYTHONPATH with WARMUP_BENCH_TEST_STOPS=FOLDER, a process stops right
after its first checkpoint that no stop signal asked for, writes its pid to FOLDER/PID (the file holds the run folder)
and waits there until the test removes that file (or FOLDER): the test signals or kills the run at that point,
whatever the machine's speed. While it waits, SIGUSR2 and SIGTERM stay pending (the test sees them in /proc, or
FOLDER/PID.signalled when a thread other than the main one took the signal), SIGINT and SIGKILL act at once. No
FOLDER, no stop. Python imports this module at start-up in every process that inherits the environment (a launcher's
jobs too); production code knows nothing of it."""

import os

FOLDER = os.environ.get("WARMUP_BENCH_TEST_STOPS")
HANG_S = 600  # a test that died lets its runs go on after this


def _stop_after_first_save(module) -> None:
    import signal
    import time
    from pathlib import Path

    save, stopped = module.save, []
    asks = {s.signum for s in module.SIGNALS}

    def save_then_wait(path, *args, **kwargs):
        save(path, *args, **kwargs)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, asks)  # a stop signal waits for the run to go on
        try:
            # once a process (a pack saves each member's checkpoint); not at a checkpoint a stop signal asked for
            if stopped or any(s.received for s in module.SIGNALS):
                return
            stopped.append(True)
            mine = Path(FOLDER, str(os.getpid()))
            try:
                mine.with_suffix(".tmp").write_text(str(Path(path).parent.resolve()))
                mine.with_suffix(".tmp").rename(mine)  # whole when the test sees it
            except FileNotFoundError:  # the test turned the stops off
                return
            deadline, told = time.time() + HANG_S, mine.with_suffix(".signalled")
            while mine.exists() and time.time() < deadline:
                if any(s.received for s in module.SIGNALS) and not told.exists():  # another thread took it
                    told.touch()
                time.sleep(0.02)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    module.save = save_then_wait


if FOLDER:
    import importlib.abc
    import importlib.util
    import sys

    class _PatchCheckpoint(importlib.abc.MetaPathFinder):
        """bench.checkpoint's save, wrapped as the module is imported (importing it here would import torch)."""

        def find_spec(self, name, path, target=None):
            if name != "bench.checkpoint":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            exec_module = spec.loader.exec_module

            def exec_then_patch(module):
                exec_module(module)
                _stop_after_first_save(module)

            spec.loader.exec_module = exec_then_patch
            return spec

    sys.meta_path.insert(0, _PatchCheckpoint())
