#!/usr/bin/env python3
"""Runs the install-and-use snippets of README.md and bindings/go/README.md as written.

    python3 tests/readme/run_readme.py [--keep] [--no-netns]

A snippet takes part when the line before its fence is a marker comment:

    <!-- readme-test: file ~/fleets-app/app.c -->     save the block to this file
    <!-- readme-test: run [expect=TEXT] -->          run it with bash -e (cwd: the checkout);
                                                      its output must contain TEXT
    <!-- readme-test: background ready=TEXT -->      start it (cwd: the checkout) like a second
                                                      terminal; wait for TEXT on its stdout;
                                                      SIGTERM at the end

Snippets run in document order, README.md first, with HOME set to a fresh temporary directory
(so ~/opt/fleets, ~/fleets-app are scratch) in which ~/src/libfleets links to this checkout;
CARGO_HOME, RUSTUP_HOME and the Go caches stay the user's. The commands are not edited. When it
can (root, or unprivileged user namespaces), the script runs in a private network namespace
with loopback only, so the emulator's fixed port 8443 cannot clash with anything else on the
machine; `cargo fetch` runs before, outside it.

Exit 0 only if every snippet ran, every expected text was printed, and each document still
has the snippets this test exists for (a C program and its run; a Go program and its run).
"""

import argparse
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = [
    # (path, the kinds of snippets the document must keep)
    ("README.md", {"file:.c", "background", "run+expect"}),
    ("bindings/go/README.md", {"file:.go", "run+expect"}),
]
MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(```+)\s*([\w+-]*)\s*$")
NETNS_ENV = "FLEETS_README_IN_NETNS"


def log(msg):
    print(f"[readme] {msg}", flush=True)


def fail(msg):
    log(f"FAILED: {msg}")
    sys.exit(1)


def snippets(path):
    """Yields (line number, kind, attributes, text) for each marked fenced block."""
    lines = open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        i += 1
        if not m:
            continue
        words = shlex.split(m.group(1))
        kind, args = words[0], words[1:]
        attrs = {}
        positional = []
        for a in args:
            if "=" in a:
                k, v = a.split("=", 1)
                attrs[k] = v
            else:
                positional.append(a)
        while i < len(lines) and not lines[i].strip():
            i += 1
        fence = FENCE.match(lines[i]) if i < len(lines) else None
        if not fence:
            fail(f"{path}:{i}: a readme-test marker must be followed by a fenced block")
        start = i + 1
        i = start
        while i < len(lines) and lines[i].strip() != fence.group(1):
            i += 1
        if i == len(lines):
            fail(f"{path}:{start}: unterminated fenced block")
        text = "\n".join(lines[start:i]) + "\n"
        i += 1
        yield start, kind, positional, attrs, text


def test_environment(home):
    """The user's environment with HOME replaced, keeping the toolchains and their caches."""
    env = dict(os.environ)
    real_home = os.path.expanduser("~")
    env.setdefault("CARGO_HOME", os.path.join(real_home, ".cargo"))
    env.setdefault("RUSTUP_HOME", os.path.join(real_home, ".rustup"))
    go = shutil.which("go")
    if go:
        for var in ("GOCACHE", "GOPATH", "GOMODCACHE", "GOENV"):
            value = subprocess.run([go, "env", var], capture_output=True, text=True).stdout.strip()
            if value:
                env[var] = value
    env["HOME"] = home
    for var in ("PKG_CONFIG_PATH", "CGO_LDFLAGS", "FLEETS_ENDPOINT", "FLEETS_API_KEY",
                "FLEETS_API_SECRET", "FLEETS_CA_FILE", "LIBFLEETS", "LD_LIBRARY_PATH"):
        env.pop(var, None)
    return env


def start_background(text, env, ready, where):
    log(f"{where}: starting in the background (like a second terminal):\n{text.rstrip()}")
    proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", text], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            break
        line = proc.stdout.readline()
        if not line:
            break
        log(f"  | {line.rstrip()}")
        if ready in line:
            return proc
    stop(proc)
    fail(f"{where}: no line containing {ready!r} within 600 s (exit status {proc.poll()})")


def stop(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_block(text, env, expect, where):
    log(f"{where}: running:\n{text.rstrip()}")
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        log(f"  | {line}")
    if proc.returncode != 0:
        fail(f"{where}: exit status {proc.returncode}")
    if expect is not None and expect not in proc.stdout:
        fail(f"{where}: the output does not contain {expect!r}")


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def enter_private_network(args):
    """Re-executes this script in a network namespace of its own when the system allows it."""
    if os.environ.get(NETNS_ENV) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        log("in a private network namespace (loopback only)")
        return
    if args.no_netns or not shutil.which("unshare") or not shutil.which("ip"):
        return
    unshare = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    if subprocess.run(unshare + ["ip", "link", "set", "lo", "up"],
                      capture_output=True).returncode != 0:
        log("no private network namespace here (unshare refused): using the host's loopback")
        return
    # Everything cargo may still download, while the network is there.
    subprocess.run(["cargo", "fetch", "--locked"], cwd=ROOT, check=True)
    env = dict(os.environ, **{NETNS_ENV: "1"})
    os.execvpe(unshare[0], unshare + [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary HOME")
    parser.add_argument("--no-netns", action="store_true",
                        help="use the host's loopback (port 8443 must be free)")
    args = parser.parse_args()
    # SIGTERM (make, ctest timeouts) still stops the background snippets and cleans up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    enter_private_network(args)
    if os.environ.get(NETNS_ENV) != "1" and not port_free(8443):
        fail("127.0.0.1:8443 is in use and no private network namespace is available")

    home = tempfile.mkdtemp(prefix="fleets-readme-")
    os.makedirs(os.path.join(home, "src"))
    os.symlink(ROOT, os.path.join(home, "src", "libfleets"))
    env = test_environment(home)
    background = []
    counts = 0
    try:
        for doc, required in DOCS:
            seen = set()
            for line, kind, positional, attrs, text in snippets(doc):
                where = f"{doc}:{line}"
                counts += 1
                if kind == "file":
                    path = os.path.expanduser(positional[0].replace("~", home, 1))
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text)
                    log(f"{where}: saved as {positional[0]}")
                    seen.add("file:" + os.path.splitext(path)[1])
                elif kind == "run":
                    run_block(text, env, attrs.get("expect"), where)
                    seen.add("run+expect" if "expect" in attrs else "run")
                elif kind == "background":
                    background.append(start_background(text, env, attrs.get("ready", ""), where))
                    seen.add("background")
                else:
                    fail(f"{where}: unknown readme-test kind {kind!r}")
            if not required <= seen:
                fail(f"{doc}: the snippets {sorted(required - seen)} are no longer marked for this test")
        print(f"readme: {counts} passed, 0 failed")
    finally:
        for proc in background:
            stop(proc)
        if args.keep:
            log(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
