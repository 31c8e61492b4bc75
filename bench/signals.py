"""The stop signals of a run: SIGUSR2 (SLURM's warning before the time limit) and SIGTERM (scancel, preemption, kill).
A signal only sets a flag; the step loop checkpoints at the end of the step (bench.checkpoint.Checkpointer) and then
hands the signal on to the handler that was there before."""

from __future__ import annotations

import os
import signal
from typing import Any


class PreemptionSignal:
    """A signal that asks the run to stop soon: SIGUSR2 (submitit asks SLURM for it before the time limit, and
    `scancel --signal=USR2` sends it) or SIGTERM (plain `scancel`, most preemptions, `kill`). Arriving mid-step, it
    only sets a flag; the step loop checkpoints at the end of the step and then calls the handler that was there
    before (submitit's, which requeues the job or exits). Without one, SIGUSR2 takes its default action (the process
    ends) and SIGTERM raises Terminated (the run ends without a result, its logger closed; rerun to resume)."""

    def __init__(self, signum: int = signal.SIGUSR2):
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.received = False
        self.previous: Any = None
        self.installed = False

    def __enter__(self) -> PreemptionSignal:
        self.received = False
        try:
            self.previous = signal.signal(self.signum, self._note)
            self.installed = True
        except ValueError:  # not the main thread: signals are not ours to handle
            self.installed = False
        return self

    def __exit__(self, *exc) -> None:
        if self.installed:
            signal.signal(self.signum, self.previous if self.previous is not None else signal.SIG_DFL)
            self.installed = False

    def _note(self, signum: int, frame) -> None:
        self.received = True

    def forward(self) -> None:
        self.received = False
        previous = self.previous if self.previous is not None else signal.SIG_DFL
        self.__exit__()
        if callable(previous):
            previous(self.signum, None)
        if self.signum == signal.SIGTERM:  # submitit only logs SIGTERM: the run stops here all the same
            raise Terminated(f"{self.name}: checkpointed; the same command resumes the run")
        if previous == signal.SIG_DFL:
            os.kill(os.getpid(), self.signum)


class Terminated(SystemExit):
    """SIGTERM: the run stopped after checkpointing (exit status 143, like a process killed by SIGTERM)."""

    def __init__(self, message: str):
        super().__init__(143)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Signals:
    """Both stop signals installed for the duration of a run."""

    def __enter__(self) -> Signals:
        for s in SIGNALS:
            s.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for s in SIGNALS:
            s.__exit__()


PREEMPTION = PreemptionSignal(signal.SIGUSR2)
TERMINATION = PreemptionSignal(signal.SIGTERM)
SIGNALS = (PREEMPTION, TERMINATION)
STOP_SIGNALS = Signals()
