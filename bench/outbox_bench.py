"""The durable outbox's rows (issue 13), run by bench.py with its Bench object.

- enqueue records/s with FLEETS_OUTBOX_SYNC_ALWAYS (one write + one fdatasync per record) and
  with FLEETS_OUTBOX_SYNC_BATCH (defaults: synced every 100 records or 1 s);
- flush records/s to the emulator (one request per event, keep-alive);
- recovery: time to open an outbox holding 100,000 queued records (goal < 1 s);
- bytes written per record: by an `always` enqueue, and for a whole enqueue + delivery
  (record, acknowledgement, segment headers).

The outbox directories live under the bench work dir (target/bench), on the disk the
checkout is on, so that fsync costs what it costs there. `c/outbox.c` does the work.
"""

import json
import shutil
import statistics


def rows(bench, run):
    work, smoke = bench.work, bench.smoke
    prog = str(work / "outbox_bench")
    runs = 1 if smoke else 3
    n_always = 100 if smoke else 2000
    n_batch = 2000 if smoke else 50000
    n_flush = 500 if smoke else 10000
    n_recover = 5000 if smoke else 100000

    def once(mode, n):
        d = work / "outbox-bench"
        shutil.rmtree(d, ignore_errors=True)
        try:
            p = run([prog, mode, str(n), str(d)], env=bench.env)
            return json.loads(p.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(d, ignore_errors=True)

    always = [once("enqueue-always", n_always) for _ in range(runs)]
    bench.add("outbox_always", "outbox enqueue, sync always (fdatasync per record)", "records/s", "higher",
              [r["records"] / r["seconds"] for r in always], "-", None)
    batch = [once("enqueue-batch", n_batch) for _ in range(runs)]
    bench.add("outbox_batch", "outbox enqueue, sync batch (100 records / 1 s)", "records/s", "higher",
              [r["records"] / r["seconds"] for r in batch], "-", None,
              note=f"syncs per 1,000 records: {1000 * statistics.median(r['syncs'] / r['records'] for r in batch):.0f}")
    flushed = []

    def flush_once():
        r = once("flush", n_flush)
        flushed.append(r)
        return r["records"]

    for _ in range(runs):
        bench.track("outbox_flush", flush_once)
    bench.add("outbox_flush", "outbox flush to the emulator (1 request per event)", "records/s", "higher",
              [r["records"] / r["seconds"] for r in flushed], "-", None)
    recover = [once("recover", n_recover) for _ in range(runs)]
    bench.add("outbox_recover", f"outbox open with {n_recover:,} queued records", "ms", "lower",
              [statistics.median(r["open_ms"]) for r in recover], "-", None,
              target=None if smoke else 1000.0)
    bench.add("outbox_bytes", "outbox bytes written per event, always (~60-byte JSON data)", "B", "lower",
              [r["written_bytes"] / r["records"] for r in always], "-", None,
              note="enqueue + delivery (record, acknowledgement, headers): "
                   f"{statistics.median(r['written_bytes'] / r['records'] for r in flushed):.0f} B per event; "
                   f"syncs per record with always: {statistics.median(r['syncs'] / r['records'] for r in always):.2f}")
