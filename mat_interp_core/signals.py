"""Stop signals of a worker process: SIGTERM / SIGINT stop it cleanly, also across its memory re-exec.

Nothing heavy is imported here: :func:`block_stop_signals` must run before anything starts a thread.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

log = logging.getLogger("mat_interp.worker")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_WAKE_SIGNAL = signal.SIGUSR1  # ends the thread that takes the stop signals, before a re-exec
_STOPPED_ENV = "MAT_INTERP_WORKER_STOPPED"  # a stop taken before the worker restarted itself (exec)
_signal_thread: threading.Thread | None = None


def block_stop_signals() -> None:
    """Block the stop signals in the calling thread, and so in every thread it starts later.

    Called before the worker imports anything that starts threads (numpy's BLAS pool, TensorFlow's): a
    process-directed signal is then delivered only to the thread of :func:`install_signal_handlers`.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, (*_STOP_SIGNALS, _WAKE_SIGNAL))


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM / SIGINT end the current trial at its next epoch (as FAIL) and the loop.

    One thread takes the (blocked) stop signals with ``sigwait`` and sets `stop`. Across a restart of the
    process image no stop is lost: :func:`restart_process` ends that thread first, so a signal sent from then
    on stays pending in the kernel and the new image (which inherits the mask) takes it; one taken before is
    passed on in the environment. A Python-level handler stays installed for a thread that was started
    before :func:`block_stop_signals`.
    """
    global _signal_thread

    def handle(signum: int) -> None:
        log.warning("signal %s: stopping after the current epoch", signum)
        stop.set()

    def take() -> None:
        while (signum := signal.sigwait((*_STOP_SIGNALS, _WAKE_SIGNAL))) != _WAKE_SIGNAL:
            handle(signum)

    for signum in _STOP_SIGNALS:
        signal.signal(signum, lambda signum, _frame: handle(signum))
    block_stop_signals()
    if os.environ.pop(_STOPPED_ENV, None):
        log.warning("stopped while restarting")
        stop.set()
    _signal_thread = threading.Thread(target=take, name="stop-signals", daemon=True)
    _signal_thread.start()


def restart_process(argv: list[str], stop: threading.Event) -> None:
    """Replace this process by a fresh image of itself (same PID) without losing a stop signal."""
    block_stop_signals()
    if _signal_thread is not None and _signal_thread.is_alive():
        signal.pthread_kill(_signal_thread.ident, _WAKE_SIGNAL)
        _signal_thread.join()
    if stop.is_set():
        os.environ[_STOPPED_ENV] = "1"
    os.execv(sys.executable, [sys.executable, *argv])
