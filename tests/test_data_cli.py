"""The ``adamlab data fetch|check`` commands. Downloads only from a loopback server."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from adamlab import cli
from adamlab.data import cifar10, imdb, mnist

from conftest import listing, missing


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_on_an_empty_directory_lists_everything_missing_and_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    code, out, _ = run(capsys, "data", "check")
    assert code == 1
    assert f"data directory: {tmp_path}" in out
    lines = out.splitlines()[1:]
    assert len(lines) == 17 + 3 and all(" missing" in line for line in lines[:17])
    assert any("imdb/aclImdb/train/labeledBow.feat" in line and "git blob sha1" in line for line in lines)
    assert any("test_batch.bin" in line and "(test set)" in line for line in lines)
    for name in ("mnist", "imdb", "cifar10"):
        verdict = next(line for line in lines[17:] if line.startswith(f"{name}: "))
        assert "NOT READY, missing: " in verdict and verdict.endswith(f"run `adamlab data fetch {name}`")


@pytest.mark.parametrize("kind", ["absent", "a file"])
def test_check_fails_when_the_data_directory_is_absent_or_a_file(tmp_path, monkeypatch, capsys, kind):
    root = tmp_path / "data"
    if kind == "a file":
        root.write_text("not a folder")
    monkeypatch.setenv("ADAMLAB_DATA", str(root))
    code, out, err = run(capsys, "data", "check", "mnist")
    assert code == 1 and out == f"data directory: {root}\n"
    what = "is not a directory" if kind == "a file" else "does not exist"
    assert err == (f"error: the data directory {root} {what}; run `adamlab data fetch mnist` or set "
                   f"ADAMLAB_DATA to the folder that holds the datasets\n")


def test_check_of_the_datasets_asked_for(tmp_path, monkeypatch, capsys):
    """Exit 0 only when every dataset asked for is complete and verified; an optional file
    (the archive once extracted, labeledBow.feat) may be missing."""
    import dataclasses
    import hashlib

    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    pinned = {}
    for key, res in mnist.ARCHIVES.items():
        body = f"stand-in for {key}".encode()
        res.path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
        res.path(tmp_path).write_bytes(body)
        pinned[key] = dataclasses.replace(res, checksum=mnist.Checksum("sha256", hashlib.sha256(body).hexdigest()),
                                          size=len(body))
    monkeypatch.setattr(mnist, "ARCHIVES", pinned)
    code, out, _ = run(capsys, "data", "check", "mnist")
    assert code == 0 and out.splitlines()[-1] == "mnist: complete and verified"
    assert "imdb" not in out and "cifar10" not in out
    code, out, _ = run(capsys, "data", "check", "mnist", "cifar10")
    assert code == 1 and "mnist: complete and verified" in out and "cifar10: NOT READY" in out
    code, out, _ = run(capsys, "data", "check")
    assert code == 1 and "imdb: NOT READY" in out
    code, _, err = run(capsys, "data", "check", "svhn")
    assert code == 2 and "unknown dataset 'svhn'" in err


def test_check_piped_into_head_prints_no_traceback(tmp_path):
    """`adamlab data check | head -1`: the reader is gone before the output is written."""
    r, w = os.pipe()
    os.close(r)  # as head does once it has its line
    env = {**os.environ, "ADAMLAB_DATA": str(tmp_path), "ADAMLAB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "adamlab.cli", "data", "check"], env=env, stdout=w,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(w)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr


def test_version_and_python_dash_m(tmp_path):
    from adamlab import __version__

    env = {**os.environ, "ADAMLAB_DATA": str(tmp_path), "ADAMLAB_OFFLINE": "1"}
    for argv in (["-m", "adamlab", "--version"], ["-m", "adamlab.cli", "--version"]):
        proc = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"adamlab {__version__}\n", "")
    proc = subprocess.run([sys.executable, "-m", "adamlab"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: adamlab")


@pytest.mark.parametrize("value", ["maybe", "2", "offline"])
def test_fetch_with_an_unclear_offline_flag_says_which_values_work(tmp_path, monkeypatch, capsys, value):
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    monkeypatch.setenv("ADAMLAB_OFFLINE", value)
    code, out, err = run(capsys, "data", "fetch", "mnist")
    assert code == 2 and out == ""
    assert err == (f"error: ADAMLAB_OFFLINE={value!r} is not understood: set it to 1, true, yes or on, "
                   f"or to 0, false, no, off or empty\n")


def test_check_reports_a_corrupt_file_and_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    bad = mnist.ARCHIVES["test_labels"].path(tmp_path)
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00" * 4542)
    code, out, _ = run(capsys, "data", "check")
    assert code == 1
    assert "mnist/t10k-labels-idx1-ubyte.gz" in out and "CORRUPT" in out and "adamlab data fetch mnist" in out


def test_check_reports_a_feat_that_is_not_the_official_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    feat = imdb.feat_resource("test").path(tmp_path)
    feat.parent.mkdir(parents=True)
    feat.write_text("10 3:1 17:1\n", encoding="ascii")
    code, out, _ = run(capsys, "data", "check")
    assert code == 1
    line = next(line for line in out.splitlines() if "test/labeledBow.feat" in line)
    assert "CORRUPT" in line and "git-sha1 is" in line and "7997f3f6" in line


def test_check_on_the_real_directory(data_root, monkeypatch, capsys):
    if not all(r.path(data_root).is_file() for r in mnist.ARCHIVES.values()):
        missing("mnist", f"MNIST .gz files not in {data_root}/mnist")
    if not imdb._have_extracted(data_root):
        missing("imdb", f"extracted IMDB reviews not in {data_root}/imdb/aclImdb")
    monkeypatch.setenv("ADAMLAB_DATA", str(data_root))
    code, out, _ = run(capsys, "data", "check", "mnist", "imdb")
    assert code == 0 and out.splitlines()[-2:] == ["mnist: complete and verified", "imdb: complete and verified"]
    status = {line.split()[1]: line for line in out.splitlines()[1:-2]}
    for res in mnist.ARCHIVES.values():
        assert " verified" in status[res.relpath]
    assert "verified  (50000 reviews, tree sha256)" in status["imdb/aclImdb/{train,test}/{pos,neg}/*.txt"]


def test_fetch_offline_names_the_file_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    monkeypatch.setenv("ADAMLAB_OFFLINE", "1")
    code, out, err = run(capsys, "data", "fetch", "mnist")
    assert code == 1 and out == ""
    assert "train-images-idx3-ubyte.gz is missing" in err and "ADAMLAB_OFFLINE" in err
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_fetch_into_an_unwritable_place_names_the_path_and_exits_1(tmp_path, monkeypatch, capsys,
                                                                   http_server, online):
    """An OSError (here a file where the data folder should be; equally no permission or a full
    disk) is reported like a DataError, not as a traceback."""
    (tmp_path / "blocker").write_text("not a folder")
    monkeypatch.setattr(mnist, "ARCHIVES", {k: dataclasses.replace(r, urls=(http_server.url("/x"),))
                                            for k, r in mnist.ARCHIVES.items()})
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path / "blocker" / "data"))
    code, out, err = run(capsys, "data", "fetch", "mnist")
    assert code == 1 and out == ""
    assert err.startswith("error: mnist: cannot write ") and str(tmp_path / "blocker") in err
    assert http_server.requests == []


def test_fetch_mnist_from_a_mirror_when_the_first_host_fails(data_root, tmp_path, monkeypatch, capsys,
                                                           http_server, online):
    """End to end with the real files served on loopback: dead official host, working mirror."""
    if not all(r.path(data_root).is_file() for r in mnist.ARCHIVES.values()):
        missing("mnist", f"MNIST .gz files not in {data_root}/mnist")
    archives = {}
    for key, res in mnist.ARCHIVES.items():
        name = res.path(data_root).name
        http_server.routes[f"/mirror/{name}"] = (res.path(data_root).read_bytes(), "ok")
        archives[key] = dataclasses.replace(res, urls=(http_server.url(f"/dead/{name}"),
                                                       http_server.url(f"/mirror/{name}")))
    monkeypatch.setattr(mnist, "ARCHIVES", archives)
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    code, out, err = run(capsys, "data", "fetch", "mnist")
    assert code == 0, err
    assert out.count("ok  ") == 4 and "100.0%" in err
    assert listing(tmp_path / "mnist") == sorted(
        r.path(data_root).name for r in mnist.ARCHIVES.values())
    monkeypatch.setenv("ADAMLAB_OFFLINE", "1")
    assert mnist.load_mnist(root=tmp_path).x_test.shape == (10_000, 784)


def test_unknown_dataset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["data", "fetch", "svhn"])
    assert e.value.code == 2
    assert "invalid choice: 'svhn'" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    env = {"ADAMLAB_DATA": str(tmp_path), "ADAMLAB_OFFLINE": "1", "PATH": "",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "adamlab.cli", "data", "check"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr  # an empty data directory is not ready
    assert proc.stdout.startswith(f"data directory: {tmp_path}")
    assert proc.stdout.splitlines()[-1].startswith("cifar10: NOT READY")


def test_fetch_all_goes_on_after_a_dataset_fails(data_root, monkeypatch, capsys):
    """Offline, on a directory whose MNIST is present: MNIST is verified and reported even when
    a later dataset (the CI copy lacks the CIFAR-10 test batch) cannot be fetched."""
    if not all(r.path(data_root).is_file() for r in mnist.ARCHIVES.values()):
        missing("mnist", f"MNIST .gz files not in {data_root}/mnist")
    monkeypatch.setenv("ADAMLAB_DATA", str(data_root))
    monkeypatch.setenv("ADAMLAB_OFFLINE", "1")
    code, out, err = run(capsys, "data", "fetch", "all")
    for res in mnist.ARCHIVES.values():
        assert f"ok  {res.path(data_root)}" in out
    complete = all(r.path(data_root).is_file() for r in cifar10.EXTRACTED)
    assert code == (0 if complete else 1)
    assert ("error: cifar10:" in err) == (not complete)
