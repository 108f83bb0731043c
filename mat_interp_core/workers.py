"""The worker loop, and launching / stopping local worker processes.

A worker is an OS process that needs only the database URL. It serves one
project, or whichever project still has trials to run, one trial at a time,
so several workers (on any number of machines) share each study. The number of
finished trials (COMPLETE + PRUNED) reaches the project's target; a worker
killed mid-trial leaves a RUNNING trial whose heartbeat stops, and the next
trial started anywhere fails it and queues a retry.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from mat_interp_core import projects, storage
from mat_interp_core.config import get_settings, open_private, private_dir

log = logging.getLogger("mat_interp.worker")

MAX_FAILS_OVER_TARGET = 10  # a project whose trials keep failing is given up after this many extra failures
MAX_BACKOFF_SECONDS = 10.0  # longest wait between attempts while the database is unavailable


@dataclass
class Work:
    """What a project needs right now: 'run' a trial, 'wait' for others, or 'none'."""

    action: str
    reason: str = ""


def assess(project: projects.ProjectHandle) -> Work:
    """Decide from the database whether the project needs another trial now."""
    import optuna
    from optuna.trial import TrialState

    if project.stop_requested:
        return Work("none", "stop requested")
    study = project.study()
    with warnings.catch_warnings():  # experimental since Optuna 2.9; said once per poll otherwise
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    counts = {s: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state] += 1
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    if finished >= project.n_trials:
        return Work("none", "done")
    if counts[TrialState.FAIL] > project.n_trials + MAX_FAILS_OVER_TARGET:
        return Work("none", f"given up: {counts[TrialState.FAIL]} trials failed")
    if counts[TrialState.WAITING] or finished + counts[TrialState.RUNNING] < project.n_trials:
        return Work("run")
    return Work("wait", "the last trials are running elsewhere")


def threads_per_worker(n_workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, n_workers))


def run_worker(
    url: str,
    only: str | None = None,
    *,
    exit_when_idle: bool = False,
    threads: int | None = None,
    poll_seconds: float = 2.0,
    stop_event: threading.Event | None = None,
    max_rss_mb: float | None = None,
) -> int:
    """Serve trials of the project named `only`, or of any project with work, until there is no work
    (``exit_when_idle``) or a stop; returns trials run."""
    import optuna

    from mat_interp_core import network, training

    network.configure_threads(threads or threads_per_worker(get_settings().default_workers))
    stop = stop_event or threading.Event()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ran = 0
    salt = os.getpid()
    ready = False
    outages = 0  # consecutive "database unavailable" errors, for the back-off
    given_up: set[str] = set()
    while not stop.is_set():
        try:
            if not ready:
                storage.init_database(url)
                ready = True
            project, waiting = _pick(url, only, given_up)
            outages = 0
            if project is None:
                if exit_when_idle and not waiting:
                    break
                stop.wait(poll_seconds)
                continue
            study = project.study(salt=salt + ran)
            objective = training.make_objective(project, stop)
            log.info("project %s: starting a trial", project.name)
            ran += 1  # counted first: a trial whose end Optuna cannot record still ran
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
        except optuna.exceptions.UpdateFinishedTrialError as err:
            # Another worker's heartbeat check failed this trial while it ran (a database
            # outage longer than the grace period) and queued its retry.
            log.warning("the trial's result was not recorded: %s", err)
        except Exception as err:
            if storage.is_conflict(err):  # a deadlock in Optuna's own writes: the server asks for a retry
                log.warning("the database rolled a write back (%s); going on", storage.describe_error(err))
                stop.wait(0.2 + random.random())
                continue
            if not storage.is_unavailable(err):
                raise
            outages += 1
            delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (outages - 1)) * (0.75 + 0.5 * random.random())
            log.warning("database unavailable (%s); retrying in %.1f s", storage.describe_error(err), delay)
            stop.wait(delay)
            continue
        if max_rss_mb and not stop.is_set() and over_memory_budget(max_rss_mb):
            raise WorkerRecycle(f"{ran} trials")
    return ran


def finish_project(project: projects.ProjectHandle, progress=None, max_rss_mb: float | None = None,
                   stop: threading.Event | None = None, slot: int = 0) -> bool:
    """The steps after a finished search; False (nothing done) while the search still runs.

    Unless the project turned it off (refine_epochs 0): the refinement of the
    best trials (:func:`mat_interp_core.refine.refine_project`). With the
    objective 'holdout': then the held-out validation of the best trials
    (:func:`mat_interp_core.validation.validate_project`). Then, for magnetisation data
    (:func:`mat_interp_core.uncertainty.band_wanted`), the held-out folds of the |ΔS_M| band
    (:func:`mat_interp_core.uncertainty.calibrate_project`). All skip what is
    already done with the same settings, so running this again, or after a
    crash, repeats nothing. With `max_rss_mb`, raises :class:`WorkerRecycle`
    after a refined model is stored when the process has grown past it (the
    caller restarts and goes on where it stopped).

    Every local worker runs this (`slot`: its index): they share the
    refinement (each claims a configuration; see refine.refine_project) and,
    once every configuration is refined, the folds (each claims a group; see
    uncertainty.calibrate_project); slot 0 runs the validation and stays until
    every fold is stored (taking over any group whose process died). `stop` set
    ends the step under way within an epoch (training.StopRequested); what is
    stored stays.
    """
    from mat_interp_core import network, refine, uncertainty, validation

    if not projects.progress(project)["done"]:
        return False
    space = project.space
    waiting = stop or threading.Event()
    if space.refinement_epochs:
        def refined(done: int, total: int, message: str) -> None:
            if progress is not None:
                progress(done, total, message)
            if max_rss_mb and done < total and over_memory_budget(max_rss_mb):
                raise WorkerRecycle(f"{done} of {total} refinements")

        while True:
            refine.refine_project(project, progress=refined, stop=stop, slot=slot)
            done, total = refine.refine_status(project)
            if done >= total:
                break
            if waiting.wait(1.0):  # others still refine: wait for them (the folds need the refined best model)
                return False
    if slot == 0 and space.objective == "holdout":
        validation.validate_project(project, progress=progress)
    if uncertainty.calibration_done(project):  # stored, or none wanted (fewer than 3 fields, not magnetisation)
        return True
    if (max_rss_mb and network.trained_here()
            and over_memory_budget(FOLD_HEADROOM * max_rss_mb)):  # a group of fold networks grows the process
        raise WorkerRecycle("the steps before the held-out folds")
    while True:  # the band's held-out folds, in groups the workers share
        uncertainty.calibrate_project(project, progress=progress, slot=slot, stop=stop)
        if slot != 0 or uncertainty.calibration_done(project):
            return True
        if waiting.wait(1.0):  # another worker trains a group: slot 0 waits for it (or takes it over)
            return False


FOLD_HEADROOM = 0.8  # before the folds, restart a worker past this fraction of its memory budget


class WorkerRecycle(Exception):
    """The worker grew past MAT_INTERP_WORKER_MAX_RSS_MB between trials: restart the process (exec).

    TensorFlow keeps a few MB per traced model for good; a fresh process image
    (same PID) keeps a long-running worker's memory bounded.
    """


def memory_budget_mb() -> float:
    """MAT_INTERP_WORKER_MAX_RSS_MB (default 1024; 0 turns recycling off).

    A worker is ~740 MB resident after its first trial (TensorFlow, Keras, SciPy; ~400 MB of it proportional,
    PSS) and grows ~4.5 MB per trial (traced functions TensorFlow keeps; keras.backend.clear_session does not
    release them), so 1024 MB means a restart about every 60 trials, and PSS (<= RSS) stays under 1 GB.
    """
    return float(os.environ.get("MAT_INTERP_WORKER_MAX_RSS_MB", "1024"))


def over_memory_budget(max_rss_mb: float) -> bool:
    import psutil

    return psutil.Process().memory_info().rss > max_rss_mb * 2**20


def _pick(url: str, only: str | None,
          given_up: set[str] | None = None) -> tuple[projects.ProjectHandle | None, bool]:
    """(project to run a trial for, whether some project is still waiting on others).

    `only`: the one project this worker serves (else any). Projects given up (too many failed trials) are logged
    once, via ``given_up``.
    """
    names = [only] if only else [p.name for p in projects.list_projects(url)]
    waiting = False
    for candidate in names:
        try:
            project = projects.open_project(url, candidate)
            work = assess(project)
        except projects.ProjectError:
            if only:
                raise
            continue  # deleted meanwhile
        if work.action == "run":
            return project, waiting
        if work.reason.startswith("given up") and given_up is not None and candidate not in given_up:
            given_up.add(candidate)
            log.warning("project %s: %s; no more trials for it", candidate, work.reason)
        waiting = waiting or work.action == "wait"
    return None, waiting


# ---------------------------------------------------------------- local processes


def log_dir() -> Path:
    return private_dir(get_settings().home / "logs")


def launch_local(project: projects.ProjectHandle, n_workers: int, *, finish: bool = False) -> list[subprocess.Popen]:
    """Start ``n_workers`` worker processes for the project on this machine (own session, own log).

    With `finish`, every worker also runs :func:`finish_project` once the search is done (they share the
    refinement; the first one runs the steps after it).
    """
    if n_workers < 1:
        raise ValueError(f"the number of workers must be >= 1; got {n_workers}")
    threads = threads_per_worker(n_workers)
    url, name = project.url, project.name
    procs = []
    for i in range(n_workers):
        logfile = open_private(log_dir() / f"{name}-worker-{int(time.time())}-{i}.log", "ab")
        cmd = [sys.executable, "-m", "mat_interp_core", "worker", name,
               "--exit-when-idle", "--threads", str(threads), *(["--finish", "--slot", str(i)] if finish else [])]
        # the URL (password included) in the environment: any user of the machine reads a command line in `ps`
        env = dict(os.environ, MAT_INTERP_DATABASE_URL=url, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
        procs.append(
            subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        )
        logfile.close()
    return procs


def stop_local(procs: list[subprocess.Popen], timeout: float = 60.0) -> None:
    """SIGTERM the given workers (they fail their current trial cleanly), SIGKILL stragglers."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
