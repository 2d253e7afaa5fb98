"""Data-parallel training on MPI: ``mpiexec -n 2`` runs against the one-process run.

The scenarios live in ``scenarios.py`` (run as a script under mpiexec, and in-process for the
one-process reference).  Skipped when mpi4py or mpiexec is not installed."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import axone
from axone import distribution

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "scenarios.py")

try:
    import mpi4py  # noqa: F401
    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
needs_mpi = pytest.mark.skipif(not (HAVE_MPI4PY and MPIEXEC),
                               reason="mpi4py and mpiexec are needed (pip install 'axone[mpi]')")


def _scenarios():
    spec = importlib.util.spec_from_file_location("dp_scenarios", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mpirun(names, out, n=2, timeout=180, env=None):
    """Run each scenario of ``names`` in one mpiexec job of ``n`` processes."""
    e = dict(os.environ, AXONE_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    e.update(env or {})
    code = ("import sys; sys.path.insert(0, %r); import scenarios\n"
            "for name in %r: scenarios.run(name, %r, 'dp')\n" % (HERE, list(names), str(out)))
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-c", code], env=e,
                          capture_output=True, text=True, timeout=timeout)


def _load(out, name, mode, rank):
    with open(os.path.join(out, f"{name}_{mode}_{rank}.json")) as f:
        res = json.load(f)
    npz = np.load(os.path.join(out, f"{name}_{mode}_{rank}.npz"))
    return res, [npz[f"arr_{i}"] for i in range(len(npz.files))]


MAIN = ["arrays", "generator", "batchnorm", "chief_files", "differ", "custom_step", "sync_bn", "backup",
        "pydataset", "overlap"]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    if not (HAVE_MPI4PY and MPIEXEC):
        pytest.skip("mpi4py and mpiexec are needed")
    out = tmp_path_factory.mktemp("dp2")
    p = mpirun(MAIN, out)
    assert p.returncode == 0, p.stdout + p.stderr
    return out, p


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp1")
    mod = _scenarios()
    for name in ["arrays", "generator", "batchnorm"]:
        mod.run(name, str(out), "single")
    return out


def _close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=what)


@needs_mpi
@pytest.mark.parametrize("name", ["arrays", "generator"])
def test_two_ranks_equal_one_process(two_ranks, one_process, name):
    out2, _ = two_ranks
    ref, ref_w = _load(one_process, name, "single", 0)
    r0, w0 = _load(out2, name, "dp", 0)
    r1, w1 = _load(out2, name, "dp", 1)
    # every rank holds the same weights, bit for bit, and sees the same logs
    for a, b in zip(w0, w1):
        assert np.array_equal(a, b)
    assert r0["history"] == r1["history"]
    # and they are those of one process at the same global batch (float32 summation order)
    assert len(w0) == len(ref_w)
    for i, (a, b) in enumerate(zip(w0, ref_w)):
        _close(a, b, f"{name}: array {i}")
    assert sorted(r0["history"]) == sorted(ref["history"])
    for k in ref["history"]:
        _close(r0["history"][k], ref["history"][k], f"{name}: history {k}")
    if name == "arrays":       # predict: each rank ran its half of every batch, then gathered
        assert ref["predict_rows"] == 150 and r0["predict_rows"] == r1["predict_rows"] == 75
    if "evaluate" in ref:
        _close(r0["evaluate"], ref["evaluate"], "evaluate")
        assert r0["evaluate"] == r1["evaluate"]


@needs_mpi
def test_batchnorm_per_replica_statistics_then_averaged(two_ranks, one_process):
    """Each rank normalizes its own part of the batch (Keras's synchronized=False), so training
    differs from one process; the ranks' weights, moving statistics included, stay identical."""
    out2, _ = two_ranks
    ref, ref_w = _load(one_process, "batchnorm", "single", 0)
    r0, w0 = _load(out2, "batchnorm", "dp", 0)
    r1, w1 = _load(out2, "batchnorm", "dp", 1)
    assert len(w0) == len(ref_w) == 8
    for a, b in zip(w0, w1):
        assert np.array_equal(a, b)
    assert r0["history"] == r1["history"]
    assert not np.allclose(w0[0], ref_w[0], rtol=1e-6, atol=0)      # really per replica
    np.testing.assert_allclose(w0[4], ref_w[4], atol=0.05)         # moving means: close


def _epochs(calls, epochs):
    return [[i for e, i in calls if e == k] for k in range(epochs)]


@needs_mpi
def test_pydataset_sharded_by_index_equals_one_process(two_ranks, tmp_path):
    """Two ranks reading their own indices of a PyDataset (batches of different sizes, an odd
    number of them) train as one process whose batch k is the ranks' batches of step k put
    together, shuffled or not; evaluate and predict give the one-process results."""
    out2, _ = two_ranks
    r0, w0 = _load(out2, "pydataset", "dp", 0)
    r1, w1 = _load(out2, "pydataset", "dp", 1)
    for a, b in zip(w0, w1):
        assert np.array_equal(a, b)
    groups = {}
    for key in ("shuffled", "ordered"):
        assert r0[key]["history"] == r1[key]["history"]
        e0, e1 = _epochs(r0[key]["calls"], 3), _epochs(r1[key]["calls"], 3)
        groups[key] = [[[a] + ([b[k]] if k < len(b) else []) for k, a in enumerate(a_)]
                       for a_, b in zip(e0, e1)]
    assert r0["evaluate"] == r1["evaluate"]
    ref, ref_w = _scenarios().pydataset_reference(str(tmp_path), groups)
    n = len(ref_w)
    assert len(w0) == n + 4            # then the auto_shard_dataset=False model's weights
    for i, (a, b) in enumerate(zip(w0[:n], ref_w)):
        _close(a, b, f"pydataset: array {i}")
    assert w0[n - 1].shape == (117, 3)     # predict: every batch's rows, in index order
    for key in ("shuffled", "ordered"):
        h, hr = r0[key]["history"], ref[key]["history"]
        assert sorted(h) == sorted(hr) and "val_loss" in h
        for k in hr:
            _close(h[k], hr[k], f"pydataset {key}: history {k}")
    for k in ref["evaluate"]:
        _close(r0["evaluate"][k], ref["evaluate"][k], f"pydataset evaluate {k}")


@needs_mpi
def test_pydataset_each_rank_reads_only_its_indices(two_ranks):
    """Rank r reads order[k*2 + r] of each epoch's order of batch indices (one order on both
    ranks: together they read every index once); the epoch hooks run on both ranks."""
    out2, _ = two_ranks
    r = [_load(out2, "pydataset", "dp", rank)[0] for rank in (0, 1)]
    for key in ("shuffled", "ordered"):
        e0, e1 = (_epochs(x[key]["calls"], 3) for x in r)
        for a, b in zip(e0, e1):
            assert len(a) == 5 and len(b) == 4          # 9 batches: steps of (2, 2, 2, 2, 1)
            assert sorted(a + b) == list(range(9))
        if key == "ordered":
            assert e0 == [[0, 2, 4, 6, 8]] * 3 and e1 == [[1, 3, 5, 7]] * 3
        else:
            assert any(a != [0, 2, 4, 6, 8] for a in e0) and e0[0] != e0[1]
        assert _epochs(r[0][key]["val_calls"], 3) == [[0, 2]] * 3
        assert _epochs(r[1][key]["val_calls"], 3) == [[1]] * 3
        for x in r:
            assert x[key]["hooks"] == [3, 3, 3, 3]
    for x, mine in zip(r, ([0, 2, 4, 6, 8], [1, 3, 5, 7])):
        assert [i for _, i in x["evaluate_calls"]] == mine
        assert [i for _, i in x["predict_calls"]] == mine
    assert r[0]["steps_calls"] == [[0, 0], [0, 2], [0, 4], [1, 6], [1, 8]]
    assert r[1]["steps_calls"] == [[0, 1], [0, 3], [0, 5], [1, 7]]     # then it ran out
    for x in r:
        assert x["steps_epochs"] == 2
        # auto_shard_dataset=False: each rank's PyDataset is its own shard, read whole
        assert [i for _, i in x["own_calls"]] == [0, 1, 2]
        # an overridden train_step cannot run a step that leaves a rank without a batch
        assert "[10, 0] rows" in x["custom_error"] and "auto_shard_dataset=False" in \
            x["custom_error"]


@needs_mpi
def test_overlapped_allreduce_is_bitwise_the_single_allreduce(two_ranks):
    out2, _ = two_ranks
    for rank in (0, 1):
        r, w = _load(out2, "overlap", "dp", rank)
        half = len(w) // 2
        assert half == 12
        for i, (a, b) in enumerate(zip(w[:half], w[half:])):
            assert np.array_equal(a, b), f"rank {rank}: array {i}"
        assert r["on"]["history"] == r["off"]["history"]
        assert r["on"]["history2"] == r["off"]["history2"]
        assert r["off"]["last"] is None
    r0, w0 = _load(out2, "overlap", "dp", 0)
    _, w1 = _load(out2, "overlap", "dp", 1)
    for a, b in zip(w0, w1):
        assert np.array_equal(a, b)
    last = r0["on"]["last"]            # rank 0's last step had a batch: buckets began early
    assert last["buckets"] >= 5 and last["nodes"] > 0
    assert last["started_at"] == sorted(last["started_at"])
    assert last["started_at"][0] < last["nodes"] - 1


def test_backward_reports_each_leaf_once_its_gradient_is_final():
    from axone.autograd.tensor import run_backward_reporting
    rng = np.random.default_rng(0)
    w1, w2, b, unused = (axone.Variable(rng.standard_normal(s).astype(np.float32))
                         for s in ((4, 5), (5, 3), (3,), (2,)))
    x = axone.Tensor(rng.standard_normal((6, 4)).astype(np.float32))

    def loss():
        h = axone.ops.relu(axone.ops.matmul(x, w1))
        return axone.ops.sum(axone.ops.matmul(h, w2) + b) + axone.ops.sum(w1 * w1)
    loss().backward()
    want = {k: v.grad.copy() for k, v in (("w1", w1), ("w2", w2), ("b", b))}
    for v in (w1, w2, b, unused):
        v.grad = None
    seen, polls = [], []

    def final(keys):
        for k in keys:
            v = {"w1": w1, "w2": w2, "b": b, "unused": unused}[k]
            seen.append((k, len(polls), None if v.grad is None else v.grad.copy()))
    root = loss()
    run_backward_reporting(root, np.ones((), np.float32),
                           {id(w1): "w1", id(w2): "w2", id(b): "b", id(unused): "unused"},
                           final, lambda: polls.append(1))
    assert sorted(k for k, _, _ in seen) == ["b", "unused", "w1", "w2"]
    assert seen[0][:2] == ("unused", 0) and seen[0][2] is None
    for k, _, g in seen[1:]:          # the gradient reported is already the final one
        assert np.array_equal(g, want[k]) and np.array_equal(g, {"w1": w1, "w2": w2,
                                                                  "b": b}[k].grad)
    at = {k: n for k, n, _ in seen}
    assert at["b"] < at["w1"] and at["w2"] < at["w1"] and at["w1"] == len(polls) - 1
    with pytest.raises(RuntimeError, match="a second time"):
        run_backward_reporting(root, np.ones((), np.float32), {}, final, lambda: None)


@needs_mpi
def test_ranks_on_one_machine_share_its_cores(tmp_path):
    """Without AXONE_NUM_THREADS each of 2 ranks takes half of the CPUs for axone's threads (at
    least one); with it, the count it gives stays."""
    from axone import _native
    cpus = max(1, min(len(os.sched_getaffinity(0)), _native._MAX_THREADS))
    share = max(1, cpus // 2)
    for given, want, changed in (("", share, share if share < cpus else None), ("2", 2, None)):
        out = tmp_path / f"t{given or 'none'}"
        out.mkdir()
        p = mpirun(["threads"], out, env={"AXONE_NUM_THREADS": given})
        assert p.returncode == 0, p.stdout + p.stderr
        for rank in (0, 1):
            r, _ = _load(out, "threads", "dp", rank)
            assert r["threads"] == (min(want, _native._MAX_THREADS) if given else want), (given, r)
            assert r["dp_threads"] == changed, (given, r)


@needs_mpi
def test_only_rank_zero_writes_files(two_ranks):
    out2, _ = two_ranks
    r0, _ = _load(out2, "chief_files", "dp", 0)
    files = sorted(f for f in os.listdir(out2) if f.startswith(("log_", "ckpt_")))
    assert files == ["ckpt_0.weights.h5", "log_0.csv"]
    # EarlyStopping decided the same on both ranks (it stopped both after 2 epochs)
    r1, _ = _load(out2, "chief_files", "dp", 1)
    assert len(r0["history"]["loss"]) == len(r1["history"]["loss"]) == 2
    rows = open(os.path.join(out2, "log_0.csv")).read().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch")


@needs_mpi
def test_ranks_whose_models_differ_are_refused(two_ranks):
    out2, _ = two_ranks
    for rank in (0, 1):
        r, _ = _load(out2, "differ", "dp", rank)
        assert r["error"] and "differs between processes" in r["error"] and "[1]" in r["error"]


@needs_mpi
def test_custom_train_step_trains_as_one_process(two_ranks, tmp_path):
    out2, _ = two_ranks
    ref, ref_w = _scenarios().run("custom_step", str(tmp_path), "single")
    r0, w0 = _load(out2, "custom_step", "dp", 0)
    r1, w1 = _load(out2, "custom_step", "dp", 1)
    for a, b in zip(w0, w1):
        assert np.array_equal(a, b)
    assert r0["history"] == r1["history"] and r0["evaluate"] == r1["evaluate"]
    for a, b in zip(w0, ref_w):
        _close(a, b, "custom train_step weights")
    for k in ref["history"]:
        _close(r0["history"][k], ref["history"][k], f"custom train_step history {k}")
    for k in ref["evaluate"]:
        _close(r0["evaluate"][k], ref["evaluate"][k], f"custom test_step {k}")
    # a global batch with fewer rows than processes cannot run an overridden step
    assert ref["short"] is None
    assert "at least one row per process (2)" in r0["short"] and r0["short"] == r1["short"]


@needs_mpi
def test_backup_and_restore_resumes_all_ranks_together(two_ranks):
    out2, _ = two_ranks
    for rank in (0, 1):
        r, w = _load(out2, "backup", "dp", rank)
        assert len(r["history"]["loss"]) == 2                   # epochs 3 and 4 only
        _close(r["history"]["loss"], r["full"]["loss"][3:], "resumed loss")
        half = len(w) // 2
        for a, b in zip(w[:half], w[half:]):
            _close(a, b, "resumed weights")
        if rank == 0:
            assert r["left"] == []                              # deleted after the completed run
    _, w0 = _load(out2, "backup", "dp", 0)
    _, w1 = _load(out2, "backup", "dp", 1)
    for a, b in zip(w0, w1):
        assert np.array_equal(a, b)


@needs_mpi
def test_synchronized_batchnorm_is_refused_naming_the_layer(two_ranks):
    out2, _ = two_ranks
    r, _ = _load(out2, "sync_bn", "dp", 1)
    assert r["error"] and "'bn'" in r["error"] and "synchronized=True" in r["error"]


@needs_mpi
def test_progress_printed_by_rank_zero_only(tmp_path):
    code = ("import sys; sys.path.insert(0, %r); import scenarios, axone\n"
            "dp = axone.distribution.DataParallel(); axone.distribution.set_distribution(dp)\n"
            "axone.utils.set_random_seed(0)\n"
            "x, y = scenarios._iris(); m = scenarios._mlp()\n"
            "m.fit(x, y, epochs=2, batch_size=50, verbose=2)\n" % HERE)
    e = dict(os.environ, AXONE_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-c", code], env=e,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("Epoch 1/2") == 1 and p.stdout.count("Epoch 2/2") == 1


@needs_mpi
def test_a_dead_rank_stops_the_others_and_the_checkpoint_loads(tmp_path):
    p = mpirun(["dies"], tmp_path, timeout=120, env={"AXONE_COLLECTIVE_TIMEOUT": "10"})
    assert p.returncode != 0
    assert not os.path.exists(tmp_path / "dies_dp_0.json")      # rank 0 did not finish
    model = _scenarios()._mlp()
    model.load_weights(str(tmp_path / "last.weights.h5"))       # the last epoch's, whole


@needs_mpi
def test_one_process_data_parallel_is_bitwise_plain_training(tmp_path):
    mod = _scenarios()
    a, wa = mod.run("arrays", str(tmp_path), "single")
    b, wb = mod.run("arrays", str(tmp_path), "dp")          # one process: DataParallel()
    assert a["history"] == b["history"] and a["evaluate"] == b["evaluate"]
    for x, y in zip(wa, wb):
        assert np.array_equal(x, y)


@needs_mpi
def test_keras_names_and_bad_input():
    dp = distribution.DataParallel()
    assert dp.num_model_replicas == 1 and dp.is_chief
    assert distribution.list_devices() == ["cpu:0"] and distribution.get_device_count() == 1
    with pytest.raises(ValueError, match="2 devices were asked for but 1 process"):
        distribution.DataParallel(devices=["cpu:0", "cpu:1"])
    with pytest.raises(ValueError, match="DeviceMesh"):
        distribution.DataParallel(device_mesh="batch")
    with pytest.raises(ValueError, match="timeout"):
        distribution.DataParallel(timeout=0)
    with pytest.raises(TypeError, match="overlap_allreduce must be True or False"):
        distribution.DataParallel(overlap_allreduce="yes")
    with pytest.raises(ValueError, match="bucket_bytes must be a positive integer.*0"):
        distribution.DataParallel(bucket_bytes=0)
    assert distribution.DataParallel().overlap_allreduce is False
    with pytest.raises(ValueError, match="expected a DataParallel or None"):
        distribution.set_distribution("data_parallel")
    with pytest.raises(NotImplementedError, match="ModelParallel"):
        distribution.ModelParallel()
    mesh = distribution.DeviceMesh((1,), ["batch"])
    assert distribution.DataParallel(device_mesh=mesh).batch_dim_name == "batch"
    distribution.set_distribution(dp)
    try:
        assert distribution.distribution() is dp and distribution.is_chief()
    finally:
        distribution.set_distribution(None)
    assert distribution.distribution() is None


def test_without_mpi4py_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"pip install 'axone\[mpi\]'"):
        distribution.DataParallel()


@needs_mpi
def test_benchmark_alternating_overlap_job_runs():
    """bench_distribution --overlap's job: steps alternate between the two all-reduce modes."""
    spec = importlib.util.spec_from_file_location(
        "bench_distribution", os.path.join(HERE, "..", "..", "benchmarks", "bench_distribution.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = mod.run("mnist", "alternate", 2, 1, MPIEXEC, samples=1024, bucket=4096)
    assert r["buckets"] == 2 and set(r["modes"]) == {"on", "off"}
    assert all(r["modes"][m]["step"] > 0 for m in ("on", "off"))
