"""Footprint rows of the benchmark (issue 15): the device build profile against the default
(release) one, bytes on the wire per report, and the wake-send-sleep cycle. Called by
bench/bench.py with its Bench object and its module (`driver`: run, log,
Emulator, ...); what they need is built by bench/footprint/build.sh.

Programs (in the bench work dir):
  fleets_loop / fleets_device_loop   bench/c/loop.c against the release / device libfleets.so
  {fleets,fleets_device,curl}_wake   bench/footprint/wake.c (one process = one device wake)
"""

import json
import ssl
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay import Relay  # noqa: E402


def extra_emulator(driver, *args):
    """A second fleets-emulator (same release binary) with extra arguments; stop() it."""
    return driver.Emulator(*args)


def emu_stats(emu):
    """The emulator's counters (admin API): connections and TLS handshakes full / resumed."""
    r = emu.ready
    ctx = ssl.create_default_context(cafile=r["ca_file"])
    req = urllib.request.Request(r["admin_endpoint"] + "/admin/v1/stats",
                                 headers={"Authorization": "Bearer " + r["admin_token"]})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.load(resp)


def env_for(bench, emu, endpoint=None):
    e = dict(bench.env)
    e.update(FLEETS_ENDPOINT=endpoint or emu.endpoint, FLEETS_CA_FILE=emu.ca)
    return e


def wake(bench, driver, impl, reports, pause_ms, env):
    p = driver.run([str(bench.work / f"{impl}_wake"), str(reports), str(pause_ms)], env=env)
    return json.loads(p.stdout.strip().splitlines()[-1])


def port_of(endpoint):
    return int(endpoint.rsplit(":", 1)[1])


# ---- device profile vs default -------------------------------------------------------------
def device(bench, driver):
    """Reports/s, client CPU and instructions per report: device profile vs default."""
    rate = {"fleets": [], "fleets_device": []}
    cpu = {"fleets": [], "fleets_device": []}
    for _ in range(bench.runs):
        for impl in ("fleets", "fleets_device"):  # interleaved so drift hits both
            out, _ = bench.loop(impl, 0, 1, bench.secs)
            rate[impl].append(out["requests"] / out["seconds"])
            cpu[impl].append(out["cpu_s"] / out["requests"] * 1e6)
    bench.add("device_seq", "device profile: C reports/s, 1 thread, keep-alive", "reports/s", "higher",
              rate["fleets_device"], "default (release)", rate["fleets"], target=0.9)
    bench.add("device_cpu", "  device profile: client CPU per report (user+sys)", "us", "lower",
              cpu["fleets_device"], "default (release)", cpu["fleets"])

    n1, n2 = (5, 25) if bench.smoke else (20, 220)
    instr = {"fleets": [], "fleets_device": []}
    for _ in range(bench.slow_runs):
        for impl in ("fleets", "fleets_device"):
            counts = []
            for n in (n1, n2):
                out_file = bench.work / f"callgrind.{impl}.{n}.out"
                bench.loop(impl, n, 1, valgrind=["--tool=callgrind", f"--callgrind-out-file={out_file}"])
                counts.append(driver.callgrind_total(out_file))
            instr[impl].append((counts[1] - counts[0]) / (n2 - n1))
    bench.add("device_instr", f"  device profile: instructions per report (callgrind, ({n2}-{n1})/{n2 - n1})",
              "instr", "lower", instr["fleets_device"], "default (release)", instr["fleets"])


def device_sizes(bench, driver):
    """Stripped libfleets.so of the device profile next to the default one, per architecture."""
    sizes = json.loads((bench.work / "sizes.json").read_text())
    dev_file = bench.work / "device_sizes.json"
    if not dev_file.exists():
        driver.log("no device_sizes.json: device size rows skipped")
        return
    dev = json.loads(dev_file.read_text())
    kib = lambda b: b / 1024
    for arch in ("x86_64", "aarch64", "armv7"):
        if arch not in dev.get("libfleets", {}):
            driver.log(f"no {arch} device libfleets.so (cross build unavailable): row skipped")
            continue
        default = sizes["libfleets"].get(arch)
        bench.add(f"size_device_{arch}", f"stripped libfleets.so, device profile, {arch}", "KiB", "lower",
                  [kib(dev["libfleets"][arch])], "default (release)", [kib(default)] if default else None,
                  target=1.5 * 1024 if arch == "aarch64" else None, absolute=arch == "aarch64")


# ---- bytes on the wire ---------------------------------------------------------------------
def wire(bench, driver):
    """TCP payload bytes per report through a counting relay: a wake cycle (connect, full
    handshake, one report, close), a steady keep-alive report, and a resumed connection."""
    emu = bench.emu
    steady_n = 11
    first, steady, notes = {}, {}, []
    for impl in ("fleets", "curl"):
        per_n = {}
        for n in (1, steady_n):
            with Relay("127.0.0.1", port_of(emu.endpoint)) as relay:
                endpoint = f"https://127.0.0.1:{relay.port}"
                out = wake(bench, driver, impl, n, 0, env_for(bench, emu, endpoint))
                relay.settle()
                conns = relay.connections
            if len(conns) != 1:
                raise SystemExit(f"bench: FAILED: {impl} used {len(conns)} connections for {n} keep-alive reports")
            per_n[n] = conns[0]
            if impl == "fleets" and n == 1:
                # fleets_client_stats counts the same TCP payload (close_notify after the snapshot).
                notes.append(f"fleets_client_stats for 1 report: sent {out['bytes_sent']} B, received "
                             f"{out['bytes_received']} B; relay: {conns[0][0]} / {conns[0][1]} B")
        first[impl] = per_n[1]
        steady[impl] = tuple((per_n[steady_n][i] - per_n[1][i]) / (steady_n - 1) for i in (0, 1))
    bench.add("wire_steady", "bytes per steady keep-alive report (TCP payload, sent+received)", "B", "lower",
              [sum(steady["fleets"])], "libcurl", [sum(steady["curl"])], target=1.0,
              note=f"sent/received per report: libfleets {steady['fleets'][0]:.0f}/{steady['fleets'][1]:.0f} B, "
                   f"libcurl {steady['curl'][0]:.0f}/{steady['curl'][1]:.0f} B (same body, same response)")
    bench.add("wire_first", "bytes per wake cycle: connect, full TLS handshake, 1 report, close", "B", "lower",
              [sum(first["fleets"])], "libcurl", [sum(first["curl"])],
              note=f"sent/received: libfleets {first['fleets'][0]}/{first['fleets'][1]} B, "
                   f"libcurl {first['curl'][0]}/{first['curl'][1]} B; " + "; ".join(notes))

    resumed = {}
    emu1 = extra_emulator(driver, "--requests-per-connection", "1")
    try:
        for impl in ("fleets", "curl"):
            with Relay("127.0.0.1", port_of(emu1.endpoint)) as relay:
                wake(bench, driver, impl, 2, 50, env_for(bench, emu1, f"https://127.0.0.1:{relay.port}"))
                relay.settle()
                conns = relay.connections
            if len(conns) != 2:
                raise SystemExit(f"bench: FAILED: {impl}: {len(conns)} connections for 2 reports, expected 2")
            resumed[impl] = conns[1]
    finally:
        emu1.stop()
    bench.add("wire_resumed", "bytes per resumed connection: TLS resumption, 1 report, close", "B", "lower",
              [sum(resumed["fleets"])], "libcurl", [sum(resumed["curl"])],
              note=f"sent/received: libfleets {resumed['fleets'][0]}/{resumed['fleets'][1]} B, "
                   f"libcurl {resumed['curl'][0]}/{resumed['curl'][1]} B (2nd connection in the process)")


# ---- wake-send-sleep -------------------------------------------------------------------------
def wake_cycle(bench, driver):
    """Process start -> one report -> exit (what a device does after waking up, without a
    session cache across processes: a full TLS handshake each time), and within one process a
    second connection that resumes the TLS session (what resumption would save)."""
    starts = 3 if bench.smoke else 11
    impls = ("fleets", "fleets_device", "curl")
    emu1 = extra_emulator(driver, "--requests-per-connection", "1")
    try:
        env = env_for(bench, emu1)
        cycle = {i: [] for i in impls}
        cpu = {i: [] for i in impls}
        handshakes = {i: [0, 0, 0] for i in impls}  # cycles, full, resumed
        for _ in range(bench.slow_runs):
            for impl in impls:
                times, cpus = [], []
                for _ in range(starts):
                    s0 = emu_stats(emu1)
                    t0 = time.perf_counter()
                    out = wake(bench, driver, impl, 1, 0, env)
                    times.append((time.perf_counter() - t0) * 1e3)
                    s1 = emu_stats(emu1)
                    cpus.append(out["cpu_s"] * 1e3)
                    h = handshakes[impl]
                    h[0] += 1
                    h[1] += s1["tls_handshakes_full"] - s0["tls_handshakes_full"]
                    h[2] += s1["tls_handshakes_resumed"] - s0["tls_handshakes_resumed"]
                cycle[impl].append(statistics.median(times))
                cpu[impl].append(statistics.median(cpus))
        hs = lambda i: (f"{handshakes[i][1] / handshakes[i][0]:g} full + "
                        f"{handshakes[i][2] / handshakes[i][0]:g} resumed handshakes per cycle")
        bench.add("wake", f"wake-send-sleep: exec -> 1 report -> exit, no resumption (median of {starts})",
                  "ms", "lower", cycle["fleets"], "libcurl", cycle["curl"],
                  note=f"emulator counted: libfleets {hs('fleets')}, libcurl {hs('curl')} "
                       f"(no TLS session survives the process: fleets_config_set_session_cache_file "
                       f"is blocked, bench/README.md)")
        bench.add("wake_cpu", "  wake cycle: client CPU, process start to exit (user+sys)", "ms", "lower",
                  cpu["fleets"], "libcurl", cpu["curl"])
        bench.add("wake_cpu_device", "  wake cycle: client CPU, device profile vs default", "ms", "lower",
                  cpu["fleets_device"], "default (release)", cpu["fleets"])

        # Within one process: report 1 on a new connection (full handshake), pause, report 2 on
        # a new connection (the server closed the first after its response): resumed.
        full = {"fleets": [], "curl": []}
        res = {"fleets": [], "curl": []}
        counted = {}
        for _ in range(bench.runs):
            for impl in ("fleets", "curl"):
                s0 = emu_stats(emu1)
                out = wake(bench, driver, impl, 2, 50, env)
                s1 = emu_stats(emu1)
                full[impl].append(out["ms"][0])
                res[impl].append(out["ms"][1])
                counted[impl] = (s1["tls_handshakes_full"] - s0["tls_handshakes_full"],
                                 s1["tls_handshakes_resumed"] - s0["tls_handshakes_resumed"])
        for impl, (f, r) in counted.items():
            if (f, r) != (1, 1):
                raise SystemExit(f"bench: FAILED: {impl}: {f} full and {r} resumed handshakes for two "
                                 f"connections, expected 1 and 1")
        bench.add("conn_full", "report on a new connection, full TLS handshake (1st in the process)", "ms",
                  "lower", full["fleets"], "libcurl", full["curl"])
        ratio = statistics.median(res["fleets"]) / statistics.median(full["fleets"])
        ratio_curl = statistics.median(res["curl"]) / statistics.median(full["curl"])
        bench.add("conn_resumed", "report on a new connection, TLS resumed (2nd in the process)", "ms",
                  "lower", res["fleets"], "libcurl", res["curl"],
                  note=f"resumed/full: libfleets {ratio:.2f}, libcurl {ratio_curl:.2f} (emulator: 1 full + "
                       f"1 resumed handshake per process for both)")
    finally:
        emu1.stop()
