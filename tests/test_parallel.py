"""Data-parallel training on several devices (issue 18), on this CPU with forced host devices.

Each case runs `tests/parallel_worker.py` in a subprocess, because the number of host devices is fixed when
JAX starts (XLA_FLAGS=--xla_force_host_platform_device_count=N).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tests.harness import ROOT

# float32 sums of 4 partial gradients instead of one: the same step up to rounding, a few Adam steps apart
RTOL, ATOL = 1e-4, 1e-6


def _worker(*args: str, devices: int = 1, timeout: int = 300, background: bool = False):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    cmd = [sys.executable, "-m", "tests.parallel_worker", *args]
    if background:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"worker {args} failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _close(a: dict, b: dict) -> None:
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=RTOL, atol=ATOL)
    for x, y in zip(a["params"], b["params"], strict=True):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)


def test_four_devices_train_like_one():
    out = _worker("compare", "--steps", "3", devices=4)
    assert out["n_devices"] == 4 and out["all"]["devices"] == 4 and out["one"]["devices"] == 1
    _close(out["all"], out["one"])
    assert out["one"]["loss"] != out["one"]["loss"][:1] * 3  # the model did train


def test_a_batch_that_does_not_split_evenly_is_a_clear_error():
    out = _worker("odd-batch", devices=4)
    assert "the global batch of 6 does not split evenly over 4 devices" in out["error"]
    assert "use a multiple of 4" in out["error"]


@pytest.fixture(scope="module")
def straight():
    """Four steps on one device, never interrupted: what every other way of training must reproduce."""
    return _worker("train", "--devices", "1", "--steps", "4", devices=1)


@pytest.mark.parametrize("first,then", [(4, 1), (1, 4)], ids=["4-to-1", "1-to-4"])
def test_checkpoint_resumes_on_another_device_count(tmp_path, straight, first, then):
    ckpt = tmp_path / "run"
    stopped = _worker("train", "--devices", str(first), "--steps", "4", "--ckpt", str(ckpt), "--stop-at", "2",
                      devices=first)  # fmt: skip
    assert stopped["interrupted_at"] == 2 and (ckpt / "checkpoint.msgpack").exists()
    resumed = _worker("train", "--devices", str(then), "--steps", "4", "--ckpt", str(ckpt), devices=then)
    assert len(resumed["loss"]) == 4  # two steps from the checkpoint's history, two trained after resuming
    _close(resumed, straight)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _network_namespaces(n: int = 2):
    """`n` network namespaces joined by veth links to a bridge-less pair (n = 2): separate network stacks, as on
    two machines, whose only path to each other is the link (`ip netns`, iproute2; needs root). Yields
    [(command prefix, address)] per host, or None where namespaces cannot be made here. Inside each namespace
    the machine's hostname resolves to that namespace's own address (`/etc/netns/NAME/hosts`, which `ip netns
    exec` mounts over /etc/hosts), so gloo listens on the link, not on a loopback the other host cannot reach."""
    if n != 2 or shutil.which("ip") is None or os.geteuid() != 0:
        yield None
        return
    tag = f"pk{os.getpid() % 100000}"
    names, subnet = [f"{tag}h{i}" for i in range(n)], f"10.231.{os.getpid() % 250}"
    addrs = [f"{subnet}.{i + 1}" for i in range(n)]
    setup = [["ip", "netns", "add", names[0]], ["ip", "netns", "add", names[1]],
             ["ip", "link", "add", f"{tag}v0", "type", "veth", "peer", "name", f"{tag}v1"]]  # fmt: skip
    for i, name in enumerate(names):
        setup += [["ip", "link", "set", f"{tag}v{i}", "netns", name],
                  ["ip", "-n", name, "addr", "add", f"{addrs[i]}/24", "dev", f"{tag}v{i}"],
                  ["ip", "-n", name, "link", "set", f"{tag}v{i}", "up"], ["ip", "-n", name, "link", "set", "lo", "up"]]
    try:
        for cmd in setup:
            if subprocess.run(cmd, capture_output=True).returncode:
                yield None
                return
        for name, addr in zip(names, addrs):
            folder = Path("/etc/netns") / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text(f"127.0.0.1 localhost\n{addr} {socket.gethostname()}\n")
        yield [(["ip", "netns", "exec", name], addr) for name, addr in zip(names, addrs)]
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)  # the veth ends go with them
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def _processes(*args: str, env: dict | None = None, module: str = "tests.parallel_worker", n: int = 2,
               devices: int = 2, per_process=lambda i: (), hosts=None) -> list[str]:  # fmt: skip
    """Start `n` processes joined by jax.distributed on a free localhost port; their stdouts, in process order.
    hosts: [(command prefix, address)] per process (`_network_namespaces`): each runs there, and process 0's
    address is the coordinator's."""
    port = str(_free_port())
    coordinator = f"{hosts[0][1] if hosts else 'localhost'}:{port}"
    base = {**os.environ, **(env or {}), "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}  # fmt: skip
    procs = []
    for i in range(n):
        if module == "tests.parallel_worker":
            cmd = [sys.executable, "-m", module, *args, "--process-id", str(i), "--num-processes", str(n),
                   "--port", port]  # fmt: skip
            penv = base
        else:  # the posekit command, configured by JAX's standard environment variables
            cmd = [sys.executable, "-m", module, *args]
            penv = {**base, "JAX_COORDINATOR_ADDRESS": coordinator, "JAX_NUM_PROCESSES": str(n),
                    "JAX_PROCESS_ID": str(i)}  # fmt: skip
        prefix = hosts[i][0] if hosts else []
        procs.append(subprocess.Popen([*prefix, *cmd, *per_process(i)], cwd=ROOT, env=penv, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))  # fmt: skip
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, f"process failed:\n{stderr[-3000:]}"
        outs.append(stdout)
    return outs


def test_two_processes_with_jax_distributed_resume_and_train_like_one_device(tmp_path, straight):
    """Two processes on localhost, two forced CPU devices each, joined by jax.distributed (gloo collectives);
    each process feeds only its half of every batch. They resume a run that one device interrupted after two
    steps, and only process 0 can see its checkpoint (as on hosts without a shared disk): both must start
    from it."""
    ckpt = tmp_path / "p0"
    stopped = _worker("train", "--devices", "1", "--steps", "4", "--ckpt", str(ckpt), "--stop-at", "2", devices=1)
    assert stopped["interrupted_at"] == 2
    dirs = [ckpt, tmp_path / "p1"]  # process 1's folder is empty
    outs = _processes("distributed", "--steps", "4", per_process=lambda i: ("--ckpt", str(dirs[i])))
    outs = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    assert [o["process"] for o in outs] == [0, 1] and all(o["processes"] == 2 and o["n_devices"] == 4 for o in outs)
    assert not (tmp_path / "p1" / "checkpoint.msgpack").exists()  # process 0 alone writes checkpoints
    _close(outs[0], straight)  # its history: two steps from the checkpoint, two trained by both processes
    np.testing.assert_allclose(outs[1]["loss"], straight["loss"][2:], rtol=RTOL, atol=ATOL)
    for x, y in zip(outs[1]["params"], straight["params"], strict=True):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL)


def test_posekit_train_on_two_hosts_matches_one(tmp_path):
    """`posekit train` in two processes configured by JAX's environment variables trains the chapter recipe's
    model like one process: the same global batches, the same checkpoint. Each host reads only its shard of the
    training crops (the default: one shard per process); one process reads both with --data-shards 2. The two
    processes run in two network namespaces joined by a veth link where the tests run as root (as CI does): no
    shared loopback, every byte between the hosts crosses the link; elsewhere on localhost. (--data-shards 1,
    every host reading all of it and building its rows of one global batch: tests/test_data_shards.py.)"""
    from posekit.checkpoint import CKPT_NAME, _read

    args = ("train", "heatmap", "--steps", "3", "--train-size", "16", "--batch-size", "8", "--lr", "1e-3", "--quiet")
    with _network_namespaces() as hosts:
        two = _processes(*args, module="posekit.cli", devices=1, hosts=hosts,
                         per_process=lambda i: ("--cache", str(tmp_path / f"host{i}")))  # fmt: skip
    print("hosts:", "network namespaces " + ", ".join(a for _, a in hosts) if hosts else "localhost")
    data = {i: sorted(p.name for p in (tmp_path / f"host{i}" / "data").glob("*.npz")) for i in (0, 1)}
    # each host rendered its own half of the 16 training crops, and nothing else
    assert data == {i: [f"single-16-0-64-faceseen-shard{i}of2.npz"] for i in (0, 1)}, data
    cmd = [sys.executable, "-m", "posekit.cli", *args, "--data-shards", "2", "--cache", str(tmp_path / "one")]
    # one process with two devices: the same two halves of each batch summed, as on two hosts of one device each
    # (batch statistics of an untrained net can hold near-constant channels, whose normalization magnifies how a
    # sum was rounded, so one device against two can differ by far more than float rounding on some batches)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    one = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "(2 process(es))" in two[0] and "->" not in two[1]  # process 0 reports (gloo logs on both)
    run = Path(two[0].split("-> ")[-1].strip())
    assert run.parent == tmp_path / "host0" / "runs" and run.name == Path(one.stdout.split("-> ")[-1].strip()).name
    a, b = _read(run / CKPT_NAME), _read(Path(one.stdout.split("-> ")[-1].strip()) / CKPT_NAME)
    assert a["step"] == b["step"] == 3
    np.testing.assert_allclose(a["history"]["loss"], b["history"]["loss"], rtol=RTOL, atol=ATOL)
    # The heatmap head's bias has no gradient: a spatial softmax is unchanged when one joint's logits all shift
    # by the same amount. Its float-rounding "gradient" differs between 1 and 2 processes, and Adam scales any
    # nonzero gradient to a step of about lr, so the bias is noise of a few times lr on both sides.
    noise = [k for k in b["state"] if k.endswith("['final']['bias']")]  # the bias, Adam's mu and nu of it
    assert len(noise) == 3 and np.abs(np.asarray(a["state"]["[0]['final']['bias']"])).max() < 10 * 1e-3
    bad = []
    for k in sorted(set(b["state"]) - set(noise)):
        x, y = np.asarray(a["state"][k], float), np.asarray(b["state"][k], float)
        if not np.allclose(x, y, rtol=1e-3, atol=1e-5):
            off = ~np.isclose(x, y, rtol=1e-3, atol=1e-5)
            bad.append(f"{k}: {np.abs(x - y).max():.2e} of {np.abs(y).max():.2e}, {off.sum()} of {off.size}")
    assert not bad, "\n".join(bad)


def test_mixed_precision_trains_on_cpu():
    """bfloat16 compute on float32 parameters follows float32 training closely on a fixed batch."""
    from posekit.train import fit
    from tests.parallel_worker import Tiny, batches, loss_fn

    fixed = batches(0)
    final = {}
    for dtype in (None, jnp.bfloat16):
        model, hist = fit(Tiny(nnx.Rngs(0)), loss_fn, lambda step: fixed, 40, lr=1e-2, progress=False,
                          compute_dtype=dtype)  # fmt: skip
        final[dtype] = hist["loss"][-1]
        assert hist["loss"][-1] < 0.75 * hist["loss"][0], hist["loss"]
    assert abs(final[jnp.bfloat16] - final[None]) < 0.05 * final[None], final
    # the parameters and BatchNorm statistics stay float32
    for kind in (nnx.Param, nnx.BatchStat):
        assert {str(x.dtype) for x in jax.tree.leaves(nnx.state(model, kind))} == {"float32"}


@pytest.mark.parametrize("size", ["0", "64x", "abc", "1x2x3"])
def test_posekit_train_names_a_bad_input_size(size, capsys):
    from posekit.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "heatmap", "--steps", "1", "--train-size", "8", "--input-size", size])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--input-size" in err and "expected S or HxW" in err and repr(size) in err


def test_posekit_train_names_an_unknown_recipe(capsys):
    from posekit.cli import main

    with pytest.raises(SystemExit):
        main(["train", "heatmaps", "--steps", "1", "--train-size", "8"])
    err = capsys.readouterr().err
    assert "heatmaps" in err and "bottomup-higher" in err  # the choices are listed
