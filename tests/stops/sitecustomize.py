"""Test helper (tests/conftest.py `Stops`): on PYTHONPATH with WARMUP_BENCH_TEST_STOPS=FOLDER, a process stops itself
(SIGSTOP) right after its first checkpoint that no stop signal asked for, having written its pid to FOLDER/PID (the
file holds the run folder), as long as FOLDER exists. A test then signals or kills the run at that point, whatever
the machine's speed, and lets it go on (SIGCONT). Python imports this module at start-up in every process that
inherits the environment (a launcher's jobs too); production code knows nothing of it."""

import os

FOLDER = os.environ.get("WARMUP_BENCH_TEST_STOPS")


def _stop_after_first_save(module) -> None:
    import signal
    from pathlib import Path

    save, stopped = module.save, []
    asks = {s.signum for s in module.SIGNALS}

    def save_then_stop(path, *args, **kwargs):
        save(path, *args, **kwargs)
        # a stop signal arriving from here on stays pending (the test sees it in /proc) until the run goes on
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, asks)
        try:
            # once a process (a pack saves each member's checkpoint); not a checkpoint a stop signal asked for
            if stopped or any(s.received for s in module.SIGNALS):
                return
            stopped.append(True)
            try:
                Path(FOLDER, str(os.getpid())).write_text(str(Path(path).parent.resolve()))
            except FileNotFoundError:  # the test turned the stops off
                return
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    module.save = save_then_stop


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
