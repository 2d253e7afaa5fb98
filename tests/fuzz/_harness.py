"""Mutation fuzzing of file readers: generic machinery shared by the fuzz tests.

A fuzz test takes a few valid files (the seeds), derives many inputs from them with
:func:`mutate` (bit flips, truncation, insertion, zip-member and JSON-value mutations, .npy
header edits) and hands each input, written to a file, to a loader in a worker process
(:func:`fuzz`).  The worker runs under an address-space limit (``RLIMIT_AS``) and a per-input
time cap; the loader may succeed or raise one of the allowed error types, anything else — another
exception, a ``MemoryError`` under the cap, a time-out (CPU time), a hang (blocked), a crash of the worker (a segfault) — is a
failure, reported with the input that caused it.

Workers are forked from a forkserver (a clean single-threaded process that has imported axone),
never from the test process with its BLAS and axone threads.  A loader is a module-level function
``loader(path)`` (picklable by reference).

``AXONE_FUZZ_INPUTS`` sets the number of inputs per fuzz test (a short pass by default);
``AXONE_FUZZ_WORKERS`` the number of worker processes; ``AXONE_FUZZ_SEED`` the seed.
"""
import io
import json
import multiprocessing
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib

__all__ = ["mutate", "mutants", "fuzz", "n_inputs", "FuzzReport", "zip_bytes"]


# --------------------------------------------------------------------------- settings
def n_inputs(default):
    """Inputs per fuzz test: ``AXONE_FUZZ_INPUTS`` when set, else ``default``."""
    v = os.environ.get("AXONE_FUZZ_INPUTS", "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else int(default)


def _n_workers():
    v = os.environ.get("AXONE_FUZZ_WORKERS", "").strip()
    if v.isdigit() and int(v) > 0:
        return int(v)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(2, n))


def _seed(default=0):
    v = os.environ.get("AXONE_FUZZ_SEED", "").strip()
    return int(v) if v.lstrip("-").isdigit() else default


# --------------------------------------------------------------------------- mutations
_INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x22, 0x5B, 0x7B, 0x2C, 0x3A]
_INTERESTING_INTS = [0, -1, 1, 2, 255, 256, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 63 - 1,
                     2 ** 64, -2 ** 31, 50_000_000, 10 ** 12]
_INTERESTING_JSON = [None, True, False, 0, -1, 1, 3, 2 ** 31, 2 ** 63, 10 ** 30, 50_000_000, -5,
                     1e308, -1e308, 0.5, float("nan"), float("inf"), "", "x", "relu", "float64",
                     "complex64", "<U3", "|O", [], [1], [None], [[]], {}, {"class_name": "Dense"},
                     {"class_name": "Dense", "config": {}}, "\udcff", "a" * 300]


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    """A zip archive of ``members`` ({name: bytes}) as bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data,
                        compress_type=compression)
    return buf.getvalue()


def _read_zip(data):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {i.filename: zf.read(i.filename) for i in zf.infolist()}
    except Exception:
        return None


def _bytes_mutation(data, rng):
    data = bytearray(data)
    op = rng.randrange(9)
    n = len(data)
    if n == 0:
        return bytes(rng.randbytes(rng.randrange(1, 64)))
    if op == 0:                                    # bit flips
        for _ in range(rng.randrange(1, 9)):
            i = rng.randrange(n)
            data[i] ^= 1 << rng.randrange(8)
    elif op == 1:                                  # interesting byte values
        for _ in range(rng.randrange(1, 5)):
            data[rng.randrange(n)] = rng.choice(_INTERESTING_BYTES)
    elif op == 2:                                  # truncation
        del data[rng.randrange(n):]
    elif op == 3:                                  # insertion of random bytes
        i = rng.randrange(n + 1)
        data[i:i] = rng.randbytes(rng.randrange(1, 64))
    elif op == 4:                                  # deletion of a run
        i = rng.randrange(n)
        del data[i:i + rng.randrange(1, 64)]
    elif op == 5:                                  # duplicate a chunk elsewhere
        i = rng.randrange(n)
        chunk = data[i:i + rng.randrange(1, 256)]
        j = rng.randrange(n + 1)
        data[j:j] = chunk
    elif op == 6:                                  # interesting integer, little endian
        i = rng.randrange(n)
        fmt = rng.choice(["<H", "<I", "<Q", "<h", "<i", "<q"])
        size = struct.calcsize(fmt)
        lo, hi = {2: (-2 ** 15, 2 ** 16 - 1), 4: (-2 ** 31, 2 ** 32 - 1),
                  8: (-2 ** 63, 2 ** 64 - 1)}[size]
        v = rng.choice([x for x in _INTERESTING_INTS if lo <= x <= hi])
        if v < 0 and fmt[1].isupper():
            v = -v
        if fmt[1].islower() and v > hi // 2:
            v = hi // 2
        data[i:i + size] = struct.pack(fmt, v)
    elif op == 7:                                  # overwrite a random run
        i = rng.randrange(n)
        k = rng.randrange(1, 32)
        data[i:i + k] = rng.randbytes(k)
    else:                                          # swap two runs
        i, j = sorted(rng.randrange(n) for _ in range(2))
        k = min(rng.randrange(1, 64), j - i)
        if k > 0:
            data[i:i + k], data[j:j + k] = data[j:j + k], data[i:i + k]
    return bytes(data)


def _json_nodes(obj, path=()):
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_nodes(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_nodes(v, path + (i,))


def _json_set(obj, path, value):
    if not path:
        return value
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return obj


def _json_mutation(text, rng):
    """Mutate one value of a JSON document (or nest it deeply); None if not JSON."""
    try:
        obj = json.loads(text)
    except Exception:
        return None
    nodes = list(_json_nodes(obj))
    path, value = rng.choice(nodes)
    op = rng.randrange(8)
    if op == 0:                                    # deep nesting in place of a value
        depth = rng.choice([100, 1000, 5000, 100000])
        marker = "\x00DEEP\x00"
        obj = _json_set(obj, path, marker)
        return json.dumps(obj).replace(json.dumps(marker), "[" * depth + "]" * depth).encode()
    if op == 1 and path:                           # delete a key / element
        parent = obj
        for p in path[:-1]:
            parent = parent[p]
        del parent[path[-1]]
    elif op == 2 and isinstance(value, (int, float)) and not isinstance(value, bool):
        obj = _json_set(obj, path, rng.choice([value * 1000, -value, value + 1, str(value),
                                               float(value) + 0.5, 2 ** 63, 50_000_000]))
    elif op == 3 and isinstance(value, list):      # change a list's length
        value = list(value)
        if value and rng.random() < 0.5:
            del value[rng.randrange(len(value))]
        else:
            value.append(rng.choice(value) if value else 0)
        obj = _json_set(obj, path, value)
    elif op == 4 and isinstance(value, str):
        obj = _json_set(obj, path, rng.choice(["", value + "x", value.upper(), "Dense", "Model",
                                               "Sequential", "InputLayer", "__class__", "eval"]))
    elif op == 5 and isinstance(value, dict):      # add an unexpected key
        value = dict(value)
        value[rng.choice(["units", "name", "config", "class_name", "shape", "x"])] = \
            rng.choice(_INTERESTING_JSON)
        obj = _json_set(obj, path, value)
    else:
        obj = _json_set(obj, path, rng.choice(_INTERESTING_JSON))
    try:
        return json.dumps(obj, allow_nan=True).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return None


def _npy_mutation(data, rng):
    """Edit a .npy member's header: shape, dtype, order, or its declared header length."""
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return None
    major = data[6]
    hlen_size = 2 if major == 1 else 4
    start = 8 + hlen_size
    (hlen,) = struct.unpack("<H" if hlen_size == 2 else "<I", data[8:start])
    header = data[start:start + hlen].decode("latin1")
    body = data[start + hlen:]
    op = rng.randrange(5)
    if op == 0:
        shape = rng.choice(["(50000000,)", "(2**40,)", "(-1,)", "(0,)", "(3, 3, 3)", "()",
                            "(1, 2**62)", "(7,)", "(a,)"])
        header = _replace_field(header, "shape", shape)
    elif op == 1:
        header = _replace_field(header, "descr", repr(rng.choice(
            ["<c8", "<U4", "|b1", "<M8[s]", "|O", "<i8", "<f2", "<f8", "|V4", "S3", "<m8[D]"])))
    elif op == 2:
        header = _replace_field(header, "fortran_order", rng.choice(["True", "1", "'x'"]))
    elif op == 3:
        return data[:8] + struct.pack("<H" if hlen_size == 2 else "<I",
                                      rng.choice([0, 1, hlen + 7, 65535])) + data[start:]
    else:
        body = body[:rng.randrange(len(body) + 1)]
    raw = header.encode("latin1")
    return data[:8] + struct.pack("<H" if hlen_size == 2 else "<I", len(raw)) + raw + body


def _replace_field(header, key, value):
    import re
    pattern = {"shape": r"'shape':\s*\([^)]*\)", "descr": r"'descr':\s*'[^']*'",
               "fortran_order": r"'fortran_order':\s*\w+"}[key]
    return re.sub(pattern, f"'{key}': {value}", header, count=1)


_BOMB = {}


def _bomb_member(size):
    """Highly compressible data (``size`` zero bytes) deflated once and reused."""
    if size not in _BOMB:
        _BOMB[size] = bytes(size)
    return _BOMB[size]


def _zip_mutation(data, rng):
    members = _read_zip(data)
    if not members:
        return None
    names = list(members)
    op = rng.randrange(8)
    compression = zipfile.ZIP_STORED
    name = rng.choice(names)
    if op == 0:                                    # mutate one member's content
        content = members[name]
        new = None
        if name.endswith(".json"):
            new = _json_mutation(content, rng)
        elif name.endswith(".npy") and rng.random() < 0.7:
            new = _npy_mutation(content, rng)
        members[name] = new if new is not None else _bytes_mutation(content, rng)
    elif op == 1:                                  # JSON value mutation in the main members
        jsons = [n for n in names if n.endswith(".json")]
        if jsons:
            name = rng.choice(jsons)
            new = _json_mutation(members[name], rng)
            if new is not None:
                members[name] = new
    elif op == 2:                                  # delete a member
        del members[name]
    elif op == 3:                                  # swap two members' contents
        other = rng.choice(names)
        members[name], members[other] = members[other], members[name]
    elif op == 4:                                  # rename a member
        content = members.pop(name)
        members[rng.choice([name + "x", "weights/9999.npy", "optimizer/m.npy", "optimizer/x.npy",
                            "../" + name, name.upper()])] = content
    elif op == 5:                                  # a compression bomb in place of a member
        members[name] = _bomb_member(rng.choice([1 << 20, 4 << 20, 16 << 20]))
        compression = zipfile.ZIP_DEFLATED
    elif op == 6:                                  # recompress everything
        compression = zipfile.ZIP_DEFLATED
    else:                                          # .npy header edit
        npys = [n for n in names if n.endswith(".npy")]
        if npys:
            name = rng.choice(npys)
            new = _npy_mutation(members[name], rng)
            if new is not None:
                members[name] = new
    out = zip_bytes(members, compression)
    if op == 7 and rng.random() < 0.3:             # lie about a declared size
        out = _patch_declared_size(out, rng)
    return out


def _patch_declared_size(data, rng):
    """Patch a central-directory entry's declared uncompressed size."""
    i = data.rfind(b"PK\x01\x02")
    if i < 0:
        return data
    data = bytearray(data)
    data[i + 24:i + 28] = struct.pack("<I", rng.choice([0, 1, 2 ** 31, 2 ** 32 - 1]))
    return bytes(data)


def mutate(data, rng):
    """One mutant of ``data`` (bytes): zip-member level when it is a zip, else bytes level;
    sometimes several mutations stacked."""
    for _ in range(1 + (rng.random() < 0.25) + (rng.random() < 0.1)):
        new = None
        if data[:2] == b"PK" and rng.random() < 0.6:
            new = _zip_mutation(data, rng)
        elif data[:1] in (b"{", b"[") and rng.random() < 0.6:
            new = _json_mutation(data, rng)
        data = new if new is not None else _bytes_mutation(data, rng)
    return data


def mutants(seeds, n, seed=None):
    """``n`` mutants of the seed files (a list of bytes), deterministic for ``seed``."""
    rng = random.Random(_seed() if seed is None else seed)
    for _ in range(n):
        yield mutate(rng.choice(seeds), rng)


# --------------------------------------------------------------------------- workers
class _TimeCap(BaseException):
    """Raised in a worker by SIGPROF when an input uses more CPU time than its cap."""


def _on_alarm(signum, frame):
    raise _TimeCap()


def _vm_size():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _worker(conn, loader, allowed, filename, time_cap, mem_cap):
    """Run ``loader`` on each input received on ``conn``; report the outcome of each."""
    os.environ.setdefault("AXONE_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    folder = tempfile.mkdtemp(prefix="axone-fuzz-")
    if mem_cap:
        limit = _vm_size() + mem_cap
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, _on_alarm)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        index, data = msg
        sub = os.path.join(folder, str(index))
        os.makedirs(sub, exist_ok=True)
        path = os.path.join(sub, filename)
        with open(path, "wb") as f:
            f.write(data)
        outcome = ("ok", None, None)
        signal.setitimer(signal.ITIMER_PROF, time_cap)
        try:
            loader(path)
        except _TimeCap:
            outcome = ("timeout", "TimeCap", f"ran past the {time_cap} s cap")
        except allowed as e:
            outcome = ("allowed", type(e).__name__, None)
        except BaseException as e:   # noqa: BLE001 - every other outcome is the finding
            outcome = ("bad", type(e).__name__, "".join(traceback.format_exception(e))[-3000:])
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        _rmtree(sub)
        try:
            conn.send((index,) + outcome)
        except _TimeCap:
            pass


def _rmtree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


class FuzzReport:
    """Outcome of a fuzz run: counts per outcome and the failures (with their inputs)."""

    def __init__(self):
        self.count = 0
        self.outcomes = {}
        self.failures = []          # (kind, error type, detail, input bytes)
        self.seconds = 0.0

    def add(self, kind, name, detail, data):
        self.count += 1
        key = f"{kind}:{name}" if name else kind
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        if kind not in ("ok", "allowed"):
            self.failures.append((kind, name, detail, data))

    def distinct_failures(self):
        """One failure per (kind, error type, last traceback line)."""
        seen = {}
        for kind, name, detail, data in self.failures:
            last = (detail or "").strip().splitlines()[-1:] or [""]
            seen.setdefault((kind, name, last[0]), (detail, data))
        return seen

    def summary(self):
        lines = [f"{self.count} inputs in {self.seconds:.1f} s: {dict(sorted(self.outcomes.items()))}"]
        for (kind, name, last), (detail, data) in list(self.distinct_failures().items())[:10]:
            lines.append(f"--- {kind} {name}: {last}\n{detail or ''}")
        return "\n".join(lines)

    def save_failures(self, folder):
        """Write each distinct failing input to ``folder`` for replay."""
        os.makedirs(folder, exist_ok=True)
        for i, ((kind, name, last), (detail, data)) in enumerate(self.distinct_failures().items()):
            with open(os.path.join(folder, f"{i:03d}-{kind}-{name}.bin"), "wb") as f:
                f.write(data)
            with open(os.path.join(folder, f"{i:03d}-{kind}-{name}.txt"), "w") as f:
                f.write(detail or last)


_CTX = None


def _context():
    global _CTX
    if _CTX is None:
        _CTX = multiprocessing.get_context("forkserver")
        _CTX.set_forkserver_preload(["numpy", "axone"])
    return _CTX


def fuzz(loader, inputs, *, allowed=None, filename="input.bin", time_cap=2.0,
         mem_cap=1 << 30, workers=None):
    """Run ``loader(path)`` on every input (an iterable of bytes) in capped worker processes.

    ``allowed``: exception types the loader may raise (default ``FileFormatError`` and
    ``FileNotFoundError``).  ``filename``: the input's file name (the loader gets
    ``<fresh folder>/<filename>``).  ``time_cap``: CPU seconds per input.  ``mem_cap``: bytes of address space a
    worker may grow by.  The time cap counts CPU time (SIGPROF in the worker, so a busy machine does
    not make it fire); a worker that does not answer within ``4·time_cap + 2`` s of wall time
    (blocked, not computing) is killed and its input reported as a hang.  Returns a
    :class:`FuzzReport`.
    """
    if allowed is None:
        from axone.fileio import FileFormatError
        allowed = (FileFormatError, FileNotFoundError)
    allowed = tuple(allowed)
    ctx = _context()
    n_workers = workers or _n_workers()
    report = FuzzReport()
    start = time.monotonic()
    source = iter(enumerate(inputs))
    pending = {}                    # index -> data, for inputs in flight
    slots = []                      # [process, connection, index in flight, deadline]

    def spawn():
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child, loader, allowed, filename, time_cap, mem_cap),
                        daemon=True)
        p.start()
        child.close()
        return [p, parent, None, None]

    def feed(slot):
        try:
            index, data = next(source)
        except StopIteration:
            return False
        pending[index] = data
        slot[1].send((index, data))
        slot[2] = index
        slot[3] = time.monotonic() + 4 * time_cap + 2.0
        return True

    from multiprocessing.connection import wait
    try:
        for _ in range(n_workers):
            slot = spawn()
            slots.append(slot)
            feed(slot)
        while any(s[2] is not None for s in slots):
            busy = [s for s in slots if s[2] is not None]
            ready = wait([s[1] for s in busy] + [s[0].sentinel for s in busy], timeout=0.5)
            now = time.monotonic()
            for slot in busy:
                p, conn, index, deadline = slot
                died = p.sentinel in ready and not conn.poll()
                if conn in ready or conn.poll():
                    try:
                        i, kind, name, detail = conn.recv()
                    except (EOFError, OSError):
                        died = True
                    else:
                        report.add(kind, name, detail, pending.pop(i))
                        slot[2] = None
                        feed(slot)
                        continue
                if died or now > deadline:
                    if not died:
                        p.kill()
                    p.join()
                    code = p.exitcode
                    if died:
                        kind, name = "crash", (f"signal {-code}" if code and code < 0
                                               else f"exit {code}")
                        detail = f"the worker died ({name}) on this input"
                    else:
                        kind, name, detail = "hang", "Hang", "the worker did not answer in time"
                    report.add(kind, name, detail, pending.pop(index))
                    conn.close()
                    new = spawn()
                    slot[:] = new
                    feed(slot)
    finally:
        for p, conn, _, _ in slots:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for p, conn, _, _ in slots:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
            conn.close()
    report.seconds = time.monotonic() - start
    return report
