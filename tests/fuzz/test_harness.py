"""The fuzz harness itself: it sees every kind of failure it is meant to catch."""
import ctypes
import os
import random
import time

import pytest

from _harness import fuzz, mutants, mutate, zip_bytes
from axone.fileio import FileFormatError


def _kind_loader(path):
    with open(path, "rb") as f:
        kind = f.read()
    if kind == b"ok":
        return
    if kind == b"format":
        raise FileFormatError(path, "bad")
    if kind == b"key":
        raise KeyError("x")
    if kind == b"segv":
        ctypes.string_at(0)
    if kind == b"spin":
        while True:
            pass
    if kind == b"hang":
        while True:
            time.sleep(0.01)
    if kind == b"memory":
        bytearray(4 << 30)


def test_harness_reports_each_failure_kind_and_recovers():
    kinds = [b"ok", b"format", b"key", b"segv", b"ok", b"spin", b"memory", b"hang", b"ok"]
    report = fuzz(_kind_loader, kinds, time_cap=0.5, mem_cap=256 << 20, workers=2)
    assert report.count == len(kinds)
    assert report.outcomes["ok"] == 3
    assert report.outcomes["allowed:FileFormatError"] == 1
    assert report.outcomes["bad:KeyError"] == 1
    assert report.outcomes["bad:MemoryError"] == 1
    assert report.outcomes["crash:signal 11"] == 1
    assert report.outcomes["timeout:TimeCap"] == 1        # CPU time past the cap
    assert report.outcomes["hang:Hang"] == 1              # blocked: killed from outside
    assert {f[3] for f in report.failures} == {b"key", b"segv", b"spin", b"memory", b"hang"}


def test_mutations_are_deterministic_and_change_the_input():
    seed = zip_bytes({"axone.json": b'{"format": "axone.model", "n": [1, 2, 3]}',
                      "weights/0000.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': "
                                          b"False, 'shape': (2,), }" + b" " * 70 + b"\n" + bytes(8)})
    a = list(mutants([seed], 200, seed=3))
    b = list(mutants([seed], 200, seed=3))
    assert a == b
    assert sum(m != seed for m in a) > 150
    rng = random.Random(0)
    assert all(isinstance(mutate(b"{}", rng), bytes) for _ in range(50))
