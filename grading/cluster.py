"""Where grading jobs run: on Dask, an embedded ``LocalCluster`` by default, or an existing cluster.

Each job (:class:`grading.jobs.Job`, data only) becomes one Dask task calling
:func:`grading.server.run` on a worker, which grades it in that worker's long-lived grading
process; the result comes back as data and the parent, the only writer of the gradebook, merges it.

- **Embedded** (the default): a ``LocalCluster`` of ``workers`` single-threaded workers running as
  threads of the run itself: a worker only hands its jobs to its grading process (a confined
  process of its own, :mod:`grading.server`), so worker processes would add their start, their
  imports and a hop per job, and nothing of isolation. Scheduler and workers talk in-process
  (``inproc://``); only their HTTP servers (health, metrics) listen, on 127.0.0.1.
  ``processes=True`` gives worker processes with nannies on 127.0.0.1 instead (what a remote
  cluster has; the tests use it for a job that kills its worker).
- **Existing** (``--scheduler tcp://HOST:8786`` or ``$DASK_SCHEDULER_ADDRESS``): the jobs go to
  that scheduler; its workers need the course's environment (this repository on their
  ``PYTHONPATH``, bubblewrap, user namespaces: see the README).

``folder``: where the embedded cluster's workers and grading processes keep their files (removed by
the caller, so nothing is left behind even when they are killed).

A run stopped half-way (:func:`grading.server.stop`) ends the grading processes; the worker threads
start no new one.

A worker that dies mid-job (killed, its machine lost) costs nothing but time: the scheduler runs
its jobs again on another worker. A job that has been running on :data:`ALLOWED_FAILURES` + 1
workers that died is given up by the scheduler (``KilledWorker``) and becomes a message and a zero
for that student; the run says which workers were lost.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator

from grading.jobs import Job, Result

ALLOWED_FAILURES = 2  # distributed.scheduler.allowed-failures: deaths of a job's worker before it is given up


class Cluster:
    """A Dask client for grading jobs: an embedded LocalCluster, or the scheduler at ``address``."""

    def __init__(self, workers: int, address: str | None = None, folder: str | None = None,
                 processes: bool = False):
        import dask
        from distributed import Client, LocalCluster

        # worker-saturation 1.0: a worker is sent its next job only when it is free, so jobs start in
        # queue order (the solution check first, then the students as submitted) instead of waiting
        # behind another job a worker took ahead (a slow notebook can take minutes).
        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                         "distributed.scheduler.worker-saturation": 1.0,
                         "distributed.worker.daemon": False,
                         "distributed.admin.tick.limit": "1h"})
        address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        self.cluster = None
        if address:
            self.client = Client(address, timeout="60s")
        else:
            from grading import server

            server.resume()
            where: dict = {"local_directory": folder} if folder else {}
            if processes:
                where.update(host="127.0.0.1", env={server.ROOT_ENV: folder} if folder else {})
            else:
                server.use_root(folder)
                # the run's own memory is not a job's (each is capped by its cgroup); the workers' HTTP
                # servers (health, metrics) default to every interface when the workers have no host
                where.update(memory_limit=0, worker_dashboard_address="127.0.0.1:0")
            # Its workers' log lines stay out of the terminal: a failed job reaches the run as its result
            # and a lost worker as a message, while what Dask logs as errors when the cluster closes
            # (a worker's heartbeat racing the close) would only alarm an instructor.
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                        dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL,
                                        **{"worker_dashboard_address": None, **where})
            self.client = Client(self.cluster)
        self.address = self.client.scheduler.address
        self.started_with = set(self.workers())

    def where(self) -> str:
        """'an embedded cluster on 127.0.0.1' or the scheduler's address."""
        if self.cluster is not None:
            return "an embedded cluster on 127.0.0.1"
        return f"the cluster at {self.address}"

    def workers(self) -> list[str]:
        return list(self.client.scheduler_info().get("workers", {}))

    def lost(self) -> list[str]:
        """Workers there at the start that are gone now."""
        return sorted(self.started_with - set(self.workers()))

    def warm_up(self, limits) -> list:
        """Have every worker start its grading process now, in the thread that will run its jobs."""
        from grading.server import warm_up

        return [self.client.submit(warm_up, limits, workers=[worker], pure=False, allow_other_workers=False)
                for worker in self.workers()]

    def submit(self, job: Job, priority: int = 0):
        """Queue ``job``; jobs of higher ``priority`` run first (Dask orders jobs of equal priority sent
        in one batch by their keys, not in the order they were submitted)."""
        from grading.server import run

        return self.client.submit(run, job, pure=False, priority=priority,
                                  key=f"grade-{job.assignment}-{job.student}-{uuid.uuid4().hex[:8]}")

    def cancel(self, futures: list) -> None:
        """Drop jobs not needed any more (a job already running finishes in its worker, unread)."""
        self.client.cancel(futures)

    def results(self, jobs: dict) -> Iterator[tuple[object, Result]]:
        """(future, result) for each of ``jobs`` (future -> Job) as it finishes; a job the scheduler gave
        up becomes a zero with a message."""
        from distributed import as_completed

        for future in as_completed(list(jobs)):
            yield future, outcome(future, jobs[future])

    def close(self) -> None:
        from grading.server import close_all

        try:
            if self.cluster is not None and not self.cluster.processes:
                close_all()  # the workers are threads of this process
            elif self.cluster is not None:
                self.client.run(close_all)
                # the workers go first (a worker that heartbeats a closing scheduler logs a traceback)
                self.cluster.scale(0)
                deadline = time.monotonic() + 10
                while self.workers() and time.monotonic() < deadline:
                    time.sleep(0.05)
        except Exception:
            pass
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            from grading import server

            server.use_root(None)


def outcome(future, job: Job) -> Result:
    """The future's result, or a Result saying why there is none."""
    error = future.exception()
    if error is None:
        return future.result()
    result = Result(job.student, job.assignment, failed=True)
    if type(error).__name__ == "KilledWorker":
        result.messages.append(f"The submission could not be graded: the grading workers running it died "
                               f"{ALLOWED_FAILURES + 1} times; it was given up and scores 0.")
    else:
        result.messages.append(f"grading failed: {type(error).__name__}: {error}")
    return result
