"""Where the market kernel's time goes, by compiled function: a sampling profile under ``perf``.

Run ``python benchmarks/profile_kernels.py`` (``--calls N``, ``--cache``) on a
machine with Linux ``perf`` (Debian: ``apt install linux-perf``). It:

* starts itself under ``perf record -e cpu-clock`` (a software clock: it works
  in virtual machines without hardware counters);
* in that child, runs ``compute_tables`` on ``kernel_split.PATHS`` paths of the
  default book, keeps the arguments of its ``market_statistics`` call and calls
  the kernel ``--calls`` times on one thread (as ``benchmarks/kernel_split.py``);
* keeps the object code numba loads or compiles, and at exit writes
  ``/tmp/perf-<pid>.map`` (perf's format for code generated at run time) with
  the address, size and dotted name of every function in it;
* prints the share of the samples in compiled code by function
  (``engine.kernels.finance.finance_lanes`` ...), largest first.

numba compiles each callee into its caller's library, so a function that LLVM
inlined is counted in its caller (``record_lanes_month`` in ``finance_lanes``);
``--hot FUNCTION`` also prints that function's hottest instructions (address in
its object file, samples, instruction), to read against ``objdump`` of the
kept objects (``--objects DIR``). Reading object code uses numba internals
(``CPUCodeLibrary``'s object-code hooks), which may change with numba releases:
this is a developer's tool, not part of a run.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

#: Environment variable set in the profiled child.
CHILD = "NCRISK_PROFILE_CHILD"


def short_name(symbol: str) -> str:
    """Dotted name of a numba symbol (``_ZN6engine7kernels...`` -> ``engine.kernels...``)."""
    match = re.match(r"(cfunc\.|__gufunc__\.)?_ZN(.*)", symbol)
    if not match:
        return symbol
    rest, parts = match.group(2), []
    while rest and rest[0].isdigit():
        digits = re.match(r"\d+", rest)
        assert digits is not None
        n = int(digits.group(0))
        start = len(digits.group(0))
        parts.append(rest[start : start + n])
        rest = rest[start + n :]
    return (match.group(1) or "") + ".".join(parts)


def _keep_object_code(objects: list[bytes]) -> None:
    """Append every object file numba compiles or loads from its cache to ``objects``."""
    from numba.core import codegen

    library = codegen.CPUCodeLibrary
    compiled = library._object_compiled_hook.__func__
    loaded = library._object_getbuffer_hook.__func__

    def on_compiled(cls: Any, ll_module: Any, buf: bytes) -> Any:
        objects.append(bytes(buf))
        return compiled(cls, ll_module, buf)

    def on_loaded(cls: Any, ll_module: Any) -> Any:
        buf = loaded(cls, ll_module)
        if buf:
            objects.append(bytes(buf))
        return buf

    library._object_compiled_hook = classmethod(on_compiled)
    library._object_getbuffer_hook = classmethod(on_loaded)


def _functions(path: str) -> list[tuple[int, int, str, str]]:
    """``(offset, size, binding letter, symbol)`` of the functions in an object file (nm)."""
    out = subprocess.run(["nm", "-S", "--defined-only", path], capture_output=True, text=True)
    found = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "TtWw":
            found.append((int(parts[0], 16), int(parts[1], 16), parts[2], parts[3]))
    return found


def _write_perf_map(objects: list[bytes], keep_dir: str | None) -> None:
    """Write ``/tmp/perf-<pid>.map`` for the functions of ``objects`` (one .text each).

    ``nm`` gives offsets within a section: the map is right for objects with one
    ``.text`` section, as numba's are (a function's address places the section).
    The report removes the map once read.
    """
    from numba.core.registry import cpu_target

    engine = cpu_target.target_context.codegen()._engine
    work = keep_dir or tempfile.mkdtemp(prefix="ncrisk-objects-")
    os.makedirs(work, exist_ok=True)
    lines = []
    for k, buf in enumerate(objects):
        path = os.path.join(work, f"o{k}.o")
        with open(path, "wb") as f:
            f.write(buf)
        functions = _functions(path)
        base = None
        # a global (T) symbol is unique to its library: its address places the .text
        for offset, _, letter, symbol in sorted(functions, key=lambda x: x[2] != "T"):
            address = engine.get_function_address(symbol) if letter in "TW" else 0
            if address:
                base = address - offset
                break
        if base is None:
            continue
        for offset, size, _, symbol in functions:
            lines.append(f"{base + offset:x} {size:x} {short_name(symbol)}@o{k}@{offset:x}")
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as f:
        f.write("\n".join(lines) + "\n")


def _child(calls: int, keep_dir: str | None) -> None:
    """Capture the kernel's arguments and call it ``calls`` times on one thread."""
    objects: list[bytes] = []
    _keep_object_code(objects)
    atexit.register(_write_perf_map, objects, keep_dir)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import kernel_split
    import numba

    from engine.blocks import market_statistics

    captured = kernel_split._capture()
    numba.set_num_threads(1)
    at = kernel_split._positions(market_statistics)
    stats = [*range(at["hist"], at["trace"]), at["dem_out"], at["fin_outputs"]]
    for _ in range(calls):
        args = list(captured)
        args[at["n_blocks"]] = 1
        for i in stats:
            args[i] = kernel_split._fresh(captured[i])
        market_statistics(*args)


def _report(data: str, hot: str | None, top: int) -> None:
    """Print the shares of the samples in compiled code, by function (and ``hot``'s lines)."""
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "ip,sym,symoff"], capture_output=True, text=True
    ).stdout
    pids = subprocess.run(
        ["perf", "script", "-i", data, "-F", "pid"], capture_output=True, text=True
    ).stdout
    by_function: collections.Counter[str] = collections.Counter()
    in_hot: collections.Counter[tuple[str, int]] = collections.Counter()
    for line in script.splitlines():
        parts = line.split()
        if len(parts) < 2 or "@o" not in parts[1]:
            continue
        symbol, _, offset = parts[1].partition("+")
        name, obj, start = symbol.split("@")
        by_function[name] += 1
        if hot and name.endswith(hot):
            in_hot[(obj, int(start, 16) + int(offset or "0", 16))] += 1
    for path in {f"/tmp/perf-{pid}.map" for pid in re.findall(r"^\s*(\d+)", pids, re.M)}:
        if os.path.exists(path):
            os.remove(path)
    total = sum(by_function.values())
    if total == 0:
        print("no samples in compiled code (was the perf map written?)")
        return
    print(f"{total:,} samples in compiled code")
    print(f"{'share':>7} {'samples':>8}  function")
    for name, count in by_function.most_common(top):
        print(f"{100 * count / total:6.1f}% {count:8,}  {name}")
    for (obj, address), count in in_hot.most_common(top):
        print(f"  {hot} {obj}.o+{address:x}: {count} samples")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="kernel calls profiled")
    parser.add_argument("--cache", action="store_true", help="use the engine's numba cache")
    parser.add_argument("--objects", default=None, help="keep the object files in this dir")
    parser.add_argument("--hot", default=None, help="also print this function's hot offsets")
    parser.add_argument("--top", type=int, default=25, help="rows printed")
    opts = parser.parse_args(argv)
    if os.environ.get(CHILD):
        _child(opts.calls, opts.objects)
        return 0
    if shutil.which("perf") is None:
        print("perf not found: install Linux perf (Debian: apt install linux-perf)")
        return 2
    env = dict(os.environ, **{CHILD: "1"})
    with tempfile.TemporaryDirectory(prefix="ncrisk-perf-") as work:
        if not opts.cache:
            env["NUMBA_CACHE_DIR"] = os.path.join(work, "numba-cache")
        data = os.path.join(work, "perf.data")
        child = [sys.executable, os.path.abspath(__file__), "--calls", str(opts.calls)]
        if opts.objects:
            child += ["--objects", opts.objects]
        record = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-o", data, "--", *child]
        recorded = subprocess.run(record, env=env)
        if recorded.returncode != 0:
            print("perf record failed (perf_event_paranoid? see `man perf-record`)")
            return 2
        _report(data, opts.hot, opts.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
