#!/usr/bin/env python3
"""Runs every row of the libfleets benchmark against one fleets-emulator and prints one table.

Called by bench/run.sh after it has built everything (see bench/README.md); stdlib only.

    bench.py --work DIR [--smoke] [--json bench/results/latest.json]

DIR holds what run.sh built: fleets_loop, curl_loop, go.test, venv/, sizes.json.
Every row: the median of several runs (>= 3; one in --smoke), the min-max spread, and the
ratio libfleets/baseline of the medians. Any failing program makes the whole run fail.
"""

import argparse
import json
import os
import re
import signal
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import download_bench
import outbox_bench
sys.path.insert(0, str(Path(__file__).resolve().parent / "footprint"))
import rows as footprint  # noqa: E402  (bench/footprint/rows.py: device profile, wire, wake rows)

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
EMULATOR = TARGET / "release" / "fleets-emulator"
KEY, SECRET = "ak_emulator_demo", "emulator-demo-secret"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(cmd, env=None, cwd=None, timeout=300):
    """Runs a program; raises (failing the whole benchmark) when it fails."""
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"bench: FAILED: {' '.join(map(str, cmd))} exited {p.returncode}\n"
                         f"{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


class Emulator:
    def __init__(self, *extra_args):
        self.proc = subprocess.Popen([str(EMULATOR), "--listen", "127.0.0.1:0", "--auto-register", *extra_args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench: FAILED: {EMULATOR} printed no ready line")
        self.ready = json.loads(line)
        self.endpoint, self.ca = self.ready["endpoint"], self.ready["ca_file"]

    def cpu_s(self):
        # utime + stime of the whole emulator process (all threads); fields after "(comm)"
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def pin(self, cpus):
        """Sets the CPU affinity of every emulator thread (threads it starts later inherit it)."""
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass

    def env(self):
        e = dict(os.environ)
        e.update(FLEETS_ENDPOINT=self.endpoint, FLEETS_CA_FILE=self.ca,
                 FLEETS_API_KEY=KEY, FLEETS_API_SECRET=SECRET)
        return e

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


def summary(samples):
    return {"samples": samples, "median": statistics.median(samples), "min": min(samples), "max": max(samples)}


class Bench:
    def __init__(self, work, smoke):
        self.work, self.smoke = work, smoke
        self.runs = 1 if smoke else 5
        self.slow_runs = 1 if smoke else 3  # valgrind, Go
        self.rounds_py = 1 if smoke else 5  # Python: alternating rounds of the three clients
        self.secs = 0.3 if smoke else 2.0
        self.emu = Emulator()
        self.env = self.emu.env()
        self.rows = []
        self.server = {}  # row id -> emulator CPU seconds per request, CPU share
        # Issue 16: client and emulator on different cores where there are at least 2 (and
        # FLEETS_BENCH_PIN is not 0): client on the last CPU, emulator on the others.
        cpus = sorted(os.sched_getaffinity(0))
        self.all_cpus = set(cpus)
        self.pinning = None
        if len(cpus) >= 2 and os.environ.get("FLEETS_BENCH_PIN", "1") != "0" and shutil.which("taskset"):
            self.pinning = {"client": {cpus[-1]}, "emulator": set(cpus[:-1])}

    def pinned(self, cmd):
        if not self.pinning:
            return cmd
        return ["taskset", "-c", ",".join(map(str, sorted(self.pinning["client"]))), *cmd]

    def loop(self, impl, *args, valgrind=None, pin=False):
        cmd = [str(self.work / f"{impl}_loop"), *map(str, args)]
        if valgrind:
            # DHAT prints its totals only without -q
            cmd = ["valgrind", *([] if "--tool=dhat" in valgrind else ["-q"]), *valgrind, *cmd]
        if pin:
            cmd = self.pinned(cmd)
        p = run(cmd, env=self.env)
        return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr

    def add(self, rid, name, unit, better, fleets, base_name, base, target=None, note="", absolute=False):
        f = summary(fleets)
        b = summary(base) if base else None
        ratio = f["median"] / b["median"] if b and b["median"] else None
        met = None
        if target is not None and ratio is not None and not absolute:
            met = ratio >= target if better == "higher" else ratio <= target
        elif target is not None and (b is None or absolute):  # absolute target on libfleets alone
            met = f["median"] <= target if better == "lower" else f["median"] >= target
        row = {"id": rid, "name": name, "unit": unit, "better": better, "fleets": f,
               "baseline_name": base_name, "baseline": b, "ratio": ratio,
               "target": target, "absolute": absolute or b is None, "met": met, "note": note}
        if rid in self.server:
            row["server"] = self.server[rid]
        self.rows.append(row)
        log(f"{name}: libfleets {f['median']:.4g} vs {base_name} {b['median'] if b else float('nan'):.4g} {unit}")

    def track(self, rid, fn):
        """Runs fn() -> requests made; records the emulator's CPU per request and its CPU share."""
        c0, t0 = self.emu.cpu_s(), time.monotonic()
        n = fn()
        c, t = self.emu.cpu_s() - c0, time.monotonic() - t0
        s = self.server.setdefault(rid, {"cpu_us_per_req": [], "cpu_share": []})
        if n:
            s["cpu_us_per_req"].append(c / n * 1e6)
        s["cpu_share"].append(c / t)

    # ---- rows -------------------------------------------------------------------------------
    def throughput(self, rid, name, threads, target=None, cpu_target=None):
        """Interleaved rounds (libfleets, libcurl, libfleets, ...), client pinned to its own core
        and the emulator to the others (issue 16); each round records the client's CPU per
        report (getrusage, user+sys) and the emulator's CPU time during the round."""
        res = {"fleets": [], "curl": []}
        cpu = {"fleets": [], "curl": []}
        user = {"fleets": [], "curl": []}  # the user-space part of cpu
        emu = {"fleets": [], "curl": []}  # emulator CPU share of one core during each round
        if self.pinning:
            self.emu.pin(self.pinning["emulator"])
        try:
            for _ in range(self.runs):
                for impl in ("fleets", "curl"):  # interleaved so drift hits both
                    def once():
                        c0 = self.emu.cpu_s()
                        out, _ = self.loop(impl, 0, threads, self.secs, pin=True)
                        emu[impl].append((self.emu.cpu_s() - c0) / out["seconds"])
                        res[impl].append(out["requests"] / out["seconds"])
                        cpu[impl].append(out["loop_cpu_s"] / out["requests"] * 1e6)
                        user[impl].append(out["loop_user_s"] / out["requests"] * 1e6)
                        return out["requests"]
                    self.track(rid, once)
        finally:
            if self.pinning:
                self.emu.pin(self.all_cpus)
        # Rounds are paired (each libfleets round next to a libcurl one): the lower end of the
        # spread of the per-pair ratios says whether the lead holds in every round.
        pairs = [f / c for f, c in zip(res["fleets"], res["curl"]) if c]
        share = lambda xs: f"{statistics.median(xs) * 100:.0f}% [{min(xs) * 100:.0f}-{max(xs) * 100:.0f}]"
        pin = (f"client on CPU {','.join(map(str, sorted(self.pinning['client'])))}, emulator on "
               f"{','.join(map(str, sorted(self.pinning['emulator'])))}" if self.pinning else "not pinned")
        note = (f"per-round ratios {min(pairs):.2f}-{max(pairs):.2f}x (median {statistics.median(pairs):.2f}x); "
                f"emulator CPU during the rounds, share of one core: libfleets {share(emu['fleets'])}, "
                f"libcurl {share(emu['curl'])}; {pin}")
        self.add(rid, name, "reports/s", "higher", res["fleets"], "libcurl", res["curl"],
                 target=target, note=note)
        self.rows[-1]["pair_ratios"] = pairs
        self.rows[-1]["emulator_share"] = emu
        self.add(rid + "_cpu", f"  client CPU per report, {threads} thread{'s' if threads > 1 else ''} (getrusage user+sys, loop)", "us", "lower",
                 cpu["fleets"], "libcurl", cpu["curl"], target=cpu_target,
                 note=f"of which user space (median): libfleets {statistics.median(user['fleets']):.1f} us, "
                      f"libcurl {statistics.median(user['curl']):.1f} us; the rest is the kernel (TCP on loopback)")

    def cold_start(self):
        starts = 3 if self.smoke else 15
        res = {"fleets": [], "curl": []}
        for _ in range(self.runs):
            for impl in ("fleets", "curl"):
                times = []
                for _ in range(starts):
                    t0 = time.perf_counter()
                    self.loop(impl, 1, 1)
                    times.append((time.perf_counter() - t0) * 1e3)
                res[impl].append(statistics.median(times))
        self.add("cold", f"C cold start: exec to first report done (median of {starts})", "ms", "lower",
                 res["fleets"], "libcurl", res["curl"])

    def instructions(self):
        n1, n2 = (5, 25) if self.smoke else (20, 220)
        res = {"fleets": [], "curl": []}
        for _ in range(self.slow_runs):
            for impl in ("fleets", "curl"):
                counts = []
                for n in (n1, n2):
                    out_file = self.work / f"callgrind.{impl}.{n}.out"
                    _, err = self.loop(impl, n, 1, valgrind=["--tool=callgrind", f"--callgrind-out-file={out_file}"])
                    counts.append(callgrind_total(out_file))
                res[impl].append((counts[1] - counts[0]) / (n2 - n1))
        self.add("instr", f"C instructions per report (callgrind, ({n2}-{n1} reports)/{n2 - n1})",
                 "instr", "lower", res["fleets"], "libcurl+OpenSSL", res["curl"], target=0.4)

    def allocations(self):
        """Heap allocations per steady-state report (DHAT blocks, (n2 - n1) / (n2 - n1) reports),
        both libraries; the Rust-side count with a counting allocator is tests/alloc_count.rs."""
        n1, n2 = (5, 25) if self.smoke else (20, 220)
        res = {"fleets": [], "curl": []}
        for impl in ("fleets", "curl"):
            blocks = []
            for n in (n1, n2):
                out_file = self.work / f"dhat.{impl}.{n}.out"
                _, err = self.loop(impl, n, 1, valgrind=["--tool=dhat", f"--dhat-out-file={out_file}"])
                m = re.search(r"Total:\s+[\d,]+ bytes in ([\d,]+) blocks", err)
                if not m:
                    raise SystemExit(f"bench: FAILED: no DHAT totals for {impl}\n{err[-2000:]}")
                blocks.append(int(m.group(1).replace(",", "")))
            res[impl].append((blocks[1] - blocks[0]) / (n2 - n1))
        self.add("allocs", f"C heap allocations per report (DHAT blocks, ({n2}-{n1})/{n2 - n1})", "allocs", "lower",
                 res["fleets"], "libcurl+OpenSSL", res["curl"], target=3, absolute=True,
                 note="the Rust-side count (counting global allocator, Rust API and C ABI) is "
                      "tests/alloc_count.rs, whose ceilings fail the tests on a regression")

    def memory(self):
        n_heap = 20 if self.smoke else 200
        n_rss = 200 if self.smoke else 3000
        heap = {"fleets": [], "curl": []}
        rss = {"fleets": [], "curl": []}
        for _ in range(self.slow_runs):
            for impl in ("fleets", "curl"):
                out_file = self.work / f"massif.{impl}.out"
                self.loop(impl, n_heap, 1, valgrind=["--tool=massif", f"--massif-out-file={out_file}"])
                heap[impl].append(massif_peak(out_file) / 1024)
                out, _ = self.loop(impl, n_rss, 1)
                rss[impl].append(out["vmhwm_kb"])
        self.add("heap", f"C peak heap, {n_heap} reports (massif, useful+extra)", "KiB", "lower",
                 heap["fleets"], "libcurl+OpenSSL", heap["curl"], target=1.0)
        self.add("rss", f"C peak RSS, {n_rss} reports (/proc VmHWM)", "KiB", "lower",
                 rss["fleets"], "libcurl+OpenSSL", rss["curl"])

    def footprint(self):
        sizes = json.loads((self.work / "sizes.json").read_text())
        kib = lambda b: b / 1024
        base = sum(sizes["debian"].values()) if sizes.get("debian") else None
        for arch in ("x86_64", "aarch64", "armv7"):
            if arch not in sizes["libfleets"]:
                log(f"no {arch} libfleets.so (cross build unavailable): row skipped")
                continue
            if arch == "x86_64":
                self.add("size_x86_64", "stripped libfleets.so, x86-64", "KiB", "lower",
                         [kib(sizes["libfleets"][arch])], "libcurl+libssl+libcrypto (Debian)",
                         [kib(base)] if base else None,
                         note=", ".join(f"{k} {kib(v):.0f} KiB" for k, v in sizes["debian"].items()))
            else:
                self.add(f"size_{arch}", f"stripped libfleets.so, {arch}", "KiB", "lower",
                         [kib(sizes["libfleets"][arch])], "-", None)
        for arch, size in sizes.get("cli", {}).items():
            curl = sizes.get("curl_tool")
            note = (f"curl tool {kib(curl):.0f} KiB + libcurl+libssl+libcrypto {kib(base):.0f} KiB"
                    if arch == "x86_64" and curl and base else "")
            self.add(f"size_cli_{arch}", f"stripped fleets CLI (libfleets linked in), {arch}", "KiB",
                     "lower", [kib(size)], "-", None, note=note)
        if "static_delta" in sizes:
            self.add("static", "size added to static thermostat (gc-sections, -s)", "KiB", "lower",
                     [kib(sizes["static_delta"])], "-", None,
                     note=f"thermostat {sizes['static_thermostat']} B - empty main {sizes['static_empty']} B")

    def python(self):
        py = self.work / "venv" / "bin" / "python"
        env = dict(self.env, PYTHONPATH=str(ROOT / "bindings" / "python" / "src"),
                   FLEETS_LIBRARY=str(TARGET / "release" / "libfleets.so"))
        holder = {}

        def once():
            # pinned like the C rows: the client on its own core, the emulator on the others
            p = run(self.pinned([str(py), str(ROOT / "bench" / "py_bench.py"), self.emu.endpoint, self.emu.ca,
                                 KEY, SECRET, "--seconds", str(self.secs), "--rounds", str(self.rounds_py)]),
                    env=env)
            holder.update(json.loads(p.stdout.strip().splitlines()[-1]))
            return None
        if self.pinning:
            self.emu.pin(self.pinning["emulator"])
        try:
            self.track("py_requests", once)
        finally:
            if self.pinning:
                self.emu.pin(self.all_cpus)
        self.server["py_httpx"] = self.server["py_requests"]
        self.add("py_requests", "Python shadow_report vs requests.Session.post", "reports/s", "higher",
                 holder["fleets"], "requests", holder["requests"], target=5.0)
        self.add("py_httpx", "Python shadow_report vs httpx.Client.post", "reports/s", "higher",
                 holder["fleets"], "httpx", holder["httpx"], target=3.0)

    def go(self):
        res = {"libfleets": [], "net-http": []}
        benchtime = "300ms" if self.smoke else "2s"
        env = dict(self.env, FLEETS_EMULATOR=str(EMULATOR))
        for _ in range(self.slow_runs):
            # its own emulator (TestMain starts the same release binary); one process per run
            p = run([str(self.work / "go.test"), "-test.run", "^$", "-test.bench", "ShadowReport/.*/serial",
                     "-test.benchtime", benchtime, "-test.count", "1"], env=env, cwd=ROOT / "bindings" / "go")
            for impl, rate in re.findall(r"BenchmarkShadowReport/(\S+)/serial\S*\s+\d+\s+\d+ ns/op\s+(\d+) req/s", p.stdout):
                res[impl].append(float(rate))
        if not res["libfleets"] or not res["net-http"]:
            raise SystemExit(f"bench: FAILED: no Go benchmark results in\n{p.stdout}")
        self.add("go", "Go ShadowReport vs net/http (bindings/go bench)", "reports/s", "higher",
                 res["libfleets"], "net/http", res["net-http"], target=1.3,
                 note="go test's own emulator (same release binary); net/http body has no clientToken")

    def capacity(self):
        secs = 1 if self.smoke else 3
        rates = []
        for _ in range(self.slow_runs):
            def once():
                p = run(["wrk", "-t2", "-c16", f"-d{secs}s", "-s", str(ROOT / "emulator" / "bench" / "report.lua"),
                         self.emu.endpoint])
                if "unexpected status" in p.stdout or "Non-2xx" in p.stdout:
                    raise SystemExit(f"bench: FAILED: wrk saw errors\n{p.stdout}")
                m = re.search(r"Requests/sec:\s+([\d.]+)", p.stdout)
                n = int(re.search(r"(\d+) requests in", p.stdout).group(1))
                rates.append(float(m.group(1)))
                return n
            self.track("capacity", once)
        self.add("capacity", "emulator capacity (wrk -t2 -c16, same emulator)", "req/s", "higher",
                 rates, "-", None)


def callgrind_total(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"bench: FAILED: no totals in {path}")


def massif_peak(path):
    best = 0
    heap = extra = 0
    for line in Path(path).read_text().splitlines():
        if line.startswith("mem_heap_B="):
            heap = int(line.split("=")[1])
        elif line.startswith("mem_heap_extra_B="):
            extra = int(line.split("=")[1])
            best = max(best, heap + extra)
    return best


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(result):
    lines = []
    hdr = f"{'row (unit, better)':<72} {'libfleets median [min-max]':<30} {'baseline median [min-max]':<42} {'ratio':>7}  {'target':<9} {'met':<5} {'emu headroom':>12}"
    lines += [hdr, "-" * len(hdr)]
    cap = next((r for r in result["rows"] if r["id"] == "capacity"), None)
    for r in result["rows"]:
        f, b = r["fleets"], r["baseline"]
        fcol = f"{fmt(f['median'])} [{fmt(f['min'])}-{fmt(f['max'])}]"
        bcol = f"{r['baseline_name']} {fmt(b['median'])} [{fmt(b['min'])}-{fmt(b['max'])}]" if b else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        tgt = "-"
        if r["target"] is not None:
            op = ">=" if r["better"] == "higher" else "<="
            if r.get("absolute", not b):
                tgt = (f"<={r['target'] / 1024:g} MiB" if r["unit"] == "KiB"
                       else f"{op}{r['target']:g}" if r["unit"] == "allocs" else f"<{r['target']:g} {r['unit']}")
            else:
                tgt = f"{op}{r['target']:g}x"
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        head = "-"
        if cap and r["unit"] == "reports/s":
            head = f"{cap['fleets']['median'] / max(f['median'], b['median'] if b else 0):.1f}x"
        name = f"{r['name']} ({r['unit']}, {r['better']})"
        lines.append(f"{name:<72} {fcol:<30} {bcol:<42} {ratio:>7}  {tgt:<9} {met:<5} {head:>12}")
    lines.append("")
    lines.append("ratio = libfleets median / baseline median. emu headroom = emulator capacity (wrk) / the row's best client rate;")
    lines.append("emulator CPU per report and share of one core during each row:")
    for r in result["rows"]:
        s = r.get("server")
        if s and s["cpu_us_per_req"]:
            lines.append(f"  {r['id']:<12} {statistics.median(s['cpu_us_per_req']):6.1f} us/req, "
                         f"busy {max(s['cpu_share']) * 100:3.0f}% of a core at most")
    for r in result["rows"]:
        if r["note"]:
            lines.append(f"  note {r['id']}: {r['note']}")
    m = result["meta"]
    lines.append(f"load average: before {m['load_before']}, after {m['load_after']} ({m['nproc']} CPUs); "
                 f"{'SMOKE run' if m['smoke'] else 'full run'}, {m['elapsed_s']:.0f} s; git {m['git']}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip", default="", help="comma-separated sections to skip (debugging)")
    a = ap.parse_args()
    t0 = time.monotonic()
    load_before = loadavg()
    b = Bench(a.work, a.smoke)
    driver = sys.modules[__name__]
    try:
        skip = set(filter(None, a.skip.split(",")))
        sections = [("seq", lambda: b.throughput("seq", "C reports/s, 1 thread, keep-alive", 1,
                                                 target=1.3, cpu_target=0.5)),
                    ("threads", lambda: b.throughput("threads4", "C reports/s, 4 threads (1 client vs 4 handles)", 4)),
                    ("threads16", lambda: b.throughput("threads16", "C reports/s, 16 threads (1 client vs 16 handles)",
                                                       16, target=1.0)),
                    ("allocs", b.allocations),
                    ("cold", b.cold_start), ("instr", b.instructions), ("mem", b.memory),
                    ("size", b.footprint),
                    # issue 15 (bench/footprint/): device profile vs default, bytes on the wire, wake cycle
                    ("device_size", lambda: footprint.device_sizes(b, driver)),
                    ("device", lambda: footprint.device(b, driver)),
                    ("wire", lambda: footprint.wire(b, driver)), ("wake", lambda: footprint.wake_cycle(b, driver)),
                    ("python", b.python), ("go", b.go),
                    ("outbox", lambda: outbox_bench.rows(b, run)),
                    ("download", lambda: download_bench.rows(b, run, log)), ("capacity", b.capacity)]
        for name, fn in sections:
            if name not in skip:
                log(f"section {name} (load {loadavg()})")
                fn()
    finally:
        b.emu.stop()
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    result = {"meta": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "smoke": a.smoke, "nproc": os.cpu_count(),
                       "load_before": load_before, "load_after": loadavg(), "elapsed_s": time.monotonic() - t0,
                       "git": git, "emulator": str(EMULATOR)},
              "rows": b.rows}
    text = table(result)
    result["table"] = text
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
