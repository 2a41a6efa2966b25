"""Shuffle bytes of a group of Spark jobs, for the per-round statistics of the extraction.

Why: how the job scales out is decided by what each round moves between executors, and the
public Python status tracker gives stage ids but no byte counts. Spark's own status store (the
data behind the web UI, kept even with the UI disabled) has them per stage, so the extraction
tags each round's jobs with a job group and reads the sum here. It is reached through the JVM
gateway, which is not a stable API: any failure gives -1 ("unavailable"), never an error.
"""

from __future__ import annotations

from pyspark import SparkContext

UNAVAILABLE = -1


def _drain_listener_bus(sc: SparkContext) -> None:
    """Stage metrics arrive through an asynchronous event queue; wait until it is empty."""
    try:
        sc._jsc.sc().listenerBus().waitUntilEmpty(10_000)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - best effort only
        pass


def group_shuffle_bytes(sc: SparkContext, group: str) -> tuple[int, int]:
    """(shuffle write bytes, shuffle read bytes) of every stage run under job group `group`.

    Counts each stage attempt (a retried stage moved its bytes twice). (-1, -1) when Spark does
    not expose the figures.
    """
    try:
        _drain_listener_bus(sc)
        tracker = sc.statusTracker()
        stage_ids: set[int] = set()
        for job_id in tracker.getJobIdsForGroup(group):
            info = tracker.getJobInfo(job_id)
            if info is not None:
                stage_ids.update(int(s) for s in info.stageIds)
        store = sc._jsc.sc().statusStore()  # type: ignore[union-attr]
        no_quantiles = sc._gateway.new_array(sc._gateway.jvm.double, 0)  # type: ignore[union-attr]
        written = read = 0
        for sid in stage_ids:
            try:
                attempts = store.stageData(sid, False, None, False, no_quantiles)
            except Exception:  # noqa: BLE001 - a skipped stage has no data: nothing moved
                continue
            it = attempts.iterator()
            while it.hasNext():
                data = it.next()
                written += int(data.shuffleWriteBytes())
                read += int(data.shuffleReadBytes())
        return written, read
    except Exception:  # noqa: BLE001 - the figures are informative, not part of the result
        return UNAVAILABLE, UNAVAILABLE
