"""What the experiment engine reads back is validated: results, tuning records, checkpoints; one
freshness rule for `list` and `run`; leftovers of killed processes; ADAMLAB_OFFLINE; and the data
directory built from a local copy (`adamlab data fetch --from DIR`).

Everything runs on the tiny synthetic problem of test_experiments (3 steps per epoch) or on small
stand-in data files with patched checksums; one test copies the real MNIST of ../shared/data.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from adamlab.cli import main
from adamlab.data import _store, cifar10, fetch_from, imdb, mnist
from adamlab.experiments import driver, results as store, runner, specs
from adamlab.experiments.executors import InlineExecutor
from adamlab.experiments.runner import CheckpointError, train_run

from conftest import SHARED_DATA
from test_data_imdb import pin
from test_experiments import REPO, Interrupt, tiny

ONE = dict(optimizers=tiny().optimizers[:1])  # Adam only


def panel(tmp_path, **changes):
    """A tiny panel run to completion under ``tmp_path``: (spec, {seed: result path})."""
    spec = tiny(epochs=2, **{**ONE, **changes})
    written = driver.run_panel(spec, InlineExecutor(), tmp_path)
    return spec, {json.loads(p.read_text())["seed"]: p for p in written}


def edit(path, change):
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))  # allow_nan: NaN goes out as the token NaN


def real_panel_file(root, name, text):
    """Write ``text`` as ``name`` in fig1-mnist quick's folder (the panels `list` shows)."""
    path = root / "fig1-mnist" / "quick" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- results


def test_a_truncated_result_or_tuning_record_is_listed_as_invalid_and_the_rest_still_listed(
        tmp_path, capsys):
    bad = real_panel_file(tmp_path, "adam-seed0.json", '{"optimizer": "adam", "train_co')
    tune = real_panel_file(tmp_path, "tune-adam.json", "")
    for cmd in ("list", "status"):
        assert main([cmd, "--results", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert f"INVALID {bad} is not valid JSON (truncated?)" in out
        assert "delete it or rerun `adamlab run fig1-mnist --preset quick`" in out
        assert f"INVALID {tune} is not valid JSON" in out
        assert "`adamlab tune fig1-mnist --preset quick --optimizer adam`" in out
    assert main(["list", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"{p:11s} " in out for p in specs.PANELS)  # every panel still listed
    row = next(line for line in out.splitlines() if line.startswith("fig1-mnist  quick"))
    assert row.split()[5:9] == ["0/3", "0/9", "0", "2"]  # tuned, results, stale, invalid


def test_run_redoes_an_invalid_result_and_tuning_record_and_load_results_names_them(tmp_path):
    spec, paths = panel(tmp_path)
    tune = store.tuning_path(tmp_path, spec, "adam")
    good = paths[1].read_text()
    paths[0].write_text(paths[0].read_text()[:100])
    tune.write_text(tune.read_text()[:-30])
    with pytest.raises(store.InvalidResultError, match=f"{paths[0]} is not valid JSON"):
        store.load_results(spec, tmp_path)
    with pytest.raises(store.InvalidResultError, match=f"{tune} is not valid JSON"):
        store.load_tuning(tmp_path, spec, "adam", strict=True)
    assert driver.run_panel(spec, InlineExecutor(), tmp_path) == [paths[0]]
    assert json.loads(tune.read_text())["chosen"] == json.loads(good)["hyper"]  # searched again
    assert paths[1].read_text() == good  # the valid one is kept
    assert set(store.load_results(spec, tmp_path)) == {("adam", 0), ("adam", 1)}


@pytest.mark.parametrize("change, problem", [
    (lambda r: r["train_cost"].__setitem__(1, float("nan")), r"train_cost\[1\] is nan, not a finite"),
    (lambda r: r["full_cost"].__setitem__(0, "0.7"), r"full_cost\[0\] is \"0.7\", not a number"),
    (lambda r: r["train_cost"].pop(), "train_cost has 1 entries, not one per completed epoch"),
    (lambda r: [r[k].pop() for k in ("full_cost_epochs", "full_cost", "full_penalty")],
     r"full_cost_epochs is \[0, 1\], expected \[0, 1, 2\]"),
    (lambda r: r.update(completed_epochs=1), "completed_epochs is 1, but a run that did not"),
    (lambda r: r.update(epochs=3), "it states 3 epochs, the spec 2"),
    (lambda r: r.pop("hyper"), "it lacks hyper"),
    (lambda r: r.update(seed=1), "holds the run of adam seed 1, not the one its name says"),
    (lambda r: r.update(diverged="yes"), "diverged is \"yes\""),
], ids=["nan", "text", "short-curve", "short-evaluations", "completed", "epochs", "no-hyper",
        "other-seed", "diverged-text"])
def test_a_result_that_breaks_the_schema_is_invalid_never_fresh(tmp_path, change, problem):
    spec, paths = panel(tmp_path)
    edit(paths[0], change)
    state, why = store.result_state(paths[0], spec)
    assert state == "invalid" and why.startswith(f"{paths[0]} is not a valid result: ")
    assert __import__("re").search(problem, why), why
    [row] = store.scan(tmp_path, specs=[spec])
    assert (row["fresh"], row["stale"], len(row["invalid"])) == (1, 0, 1)
    with pytest.raises(store.InvalidResultError, match=str(paths[0].name)):
        store.load_results(spec, tmp_path)
    assert driver.run_panel(spec, InlineExecutor(), tmp_path) == [paths[0]]
    assert store.result_state(paths[0], spec)[0] == "fresh"


def test_a_diverged_run_is_a_valid_result(tmp_path):
    spec = tiny(epochs=3)
    run = train_run(spec, "sgdnesterov", {"lr": 1e6, "momentum": 0.99}, 0)
    assert run["diverged"] is not None and run["completed_epochs"] < spec.epochs
    path = store.write_result(tmp_path, spec, run, None)
    assert store.result_state(path, spec, run["hyper"]) == ("fresh", str(path))
    # a diverged run whose curve is longer than the epochs it completed is not
    edit(path, lambda r: r["train_cost"].append(1.0))
    assert store.result_state(path, spec)[0] == "invalid"


def test_list_and_run_agree_when_the_tuning_choice_changed(tmp_path, capsys):
    spec, paths = panel(tmp_path)
    tune = store.tuning_path(tmp_path, spec, "adam")
    old = json.loads(tune.read_text())["chosen"]
    new = {**old, "lr": old["lr"] * 10}
    edit(tune, lambda r: r.update(chosen=new))
    [row] = store.scan(tmp_path, specs=[spec])
    assert (row["fresh"], row["stale"], row["tuned"]) == (0, 2, 1)
    assert all("the tuning record now chooses" in why for why in row["stale_files"])
    for p in paths.values():
        assert store.result_state(p, spec, new)[0] == "stale"
        assert not driver._fresh(p, spec, new)  # the rule `run` skips by
    with pytest.raises(store.StaleResultError, match="tuning record now chooses"):
        store.load_results(spec, tmp_path)
    assert sorted(driver.run_panel(spec, InlineExecutor(), tmp_path)) == sorted(paths.values())
    assert all(json.loads(p.read_text())["hyper"] == new for p in paths.values())
    [row] = store.scan(tmp_path, specs=[spec])
    assert (row["fresh"], row["stale"]) == (2, 0)


# ----------------------------------------------------------------------------- checkpoints


def checkpoint(tmp_path, seed=0, epochs=3, stop_after=2):
    """An interrupted tiny run's checkpoint folder (at epoch ``stop_after``)."""
    spec = tiny(epochs=epochs, **ONE)
    where = runner.checkpoint_path(store.checkpoints_dir(tmp_path), spec, "adam", seed)

    def stop(epoch, step):
        if epoch == stop_after + 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_run(spec, "adam", {"lr": 1e-2}, seed, checkpoint_dir=where, on_step=stop,
                  checkpoint_every_s=0)
    return spec, where


@pytest.mark.parametrize("change, problem", [
    (lambda m: m.update(epoch=3), r"log.train_cost has 2 entries, but the checkpoint is at epoch 3"),
    (lambda m: m.update(epoch=1), "log.train_cost has 2 entries, but the checkpoint is at epoch 1"),
    (lambda m: m.update(t=7), "step count t = 7 is not a whole number"),
    (lambda m: m.update(npz="state-00001.npz"), "names the arrays 'state-00001.npz', not those"),
    (lambda m: m["log"]["full_cost"].pop(), "log.full_cost has 2 entries, log.full_cost_epochs 3"),
    (lambda m: m.update(epoch=44), "epoch 44 is not within the run's 1..3"),
    (lambda m: m.update(t=4), "4 steps after epoch 2, where an epoch is 3 steps"),
], ids=["epoch+1", "epoch-1", "steps", "npz", "log", "epoch-44", "steps-per-epoch"])
def test_a_checkpoint_that_does_not_hold_together_is_refused(tmp_path, change, problem):
    spec, where = checkpoint(tmp_path)
    edit(where / "checkpoint.json", change)
    with pytest.raises(CheckpointError) as e:
        train_run(spec, "adam", {"lr": 1e-2}, 0, checkpoint_dir=where, resume=True)
    msg = str(e.value)
    assert f"checkpoint {where / 'checkpoint.json'} does not hold together" in msg
    assert problem in msg and msg.endswith(f"delete {where} and rerun without --resume")
    with pytest.raises(CheckpointError, match="does not hold together"):
        driver.run_panel(spec, InlineExecutor(), tmp_path, seeds=[0], resume=True)
    assert not any(store.panel_dir(tmp_path, spec).glob("adam-seed*.json"))  # nothing counted


@pytest.mark.parametrize("garbage", [b"\x93NUMPY" + os.urandom(200), os.urandom(300), b""],
                         ids=["npy-header", "random", "empty"])
def test_random_bytes_as_the_checkpoint_arrays_name_the_file_and_the_fix(tmp_path, garbage):
    spec, where = checkpoint(tmp_path)
    npz = where / json.loads((where / "checkpoint.json").read_text())["npz"]
    npz.write_bytes(garbage)
    with pytest.raises(CheckpointError) as e:
        train_run(spec, "adam", {"lr": 1e-2}, 0, checkpoint_dir=where, resume=True)
    assert str(e.value) == (f"checkpoint {npz} is not a valid .npz archive (corrupt or truncated): "
                            f"delete {where} and rerun without --resume")
    assert "pickle" not in str(e.value)
    npz.unlink()
    with pytest.raises(CheckpointError, match=f"checkpoint {npz}, named by .* is missing"):
        train_run(spec, "adam", {"lr": 1e-2}, 0, checkpoint_dir=where, resume=True)


def test_a_truncated_checkpoint_json_names_the_file_and_the_fix(tmp_path, capsys):
    spec, where = checkpoint(tmp_path)
    (where / "checkpoint.json").write_text('{"identity": {')
    with pytest.raises(CheckpointError, match=r"is not valid JSON \(truncated\?\): delete .* and "
                                              r"rerun without --resume"):
        train_run(spec, "adam", {"lr": 1e-2}, 0, checkpoint_dir=where, resume=True)
    assert main(["status", "--results", str(tmp_path)]) == 0
    assert f"INVALID checkpoint {where / 'checkpoint.json'} is not valid JSON" \
        in capsys.readouterr().out


def test_a_checkpoint_copied_from_another_run_is_refused_naming_both(tmp_path, capsys):
    spec, theirs = checkpoint(tmp_path, seed=1)
    ours = runner.checkpoint_path(store.checkpoints_dir(tmp_path), spec, "adam", 0)
    shutil.copytree(theirs, ours)
    with pytest.raises(CheckpointError) as e:
        train_run(spec, "adam", {"lr": 1e-2}, 0, checkpoint_dir=ours, resume=True)
    msg = str(e.value)
    assert f"the checkpoint in {ours} belongs to another experiment" in msg
    assert "it is the run of tiny quick adam seed 1 at {'lr': 0.01} over 3 epochs" in msg
    assert "this is tiny quick adam seed 0 at {'lr': 0.01} over 3 epochs" in msg
    assert "differ in seed" in msg
    assert main(["status", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"INVALID checkpoint {ours / 'checkpoint.json'} holds the run of tiny quick adam seed 1" \
        in out and "tiny quick adam seed 1: epoch 2/3" in out


def test_a_valid_checkpoint_still_resumes(tmp_path):
    spec, where = checkpoint(tmp_path)
    whole = train_run(spec, "adam", {"lr": 1e-2}, 0)
    resumed = train_run(spec, "adam", {"lr": 1e-2}, 0, checkpoint_dir=where, resume=True)
    assert resumed["resumed_at_epochs"] == [2] and resumed["train_cost"] == whole["train_cost"]


# ----------------------------------------------------------------------------- smaller


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_run_removes_temporary_files_of_killed_processes(tmp_path):
    spec, paths = panel(tmp_path)
    folder = paths[0].parent
    dead, alive = dead_pid(), os.getpid()
    left = [folder / f".adam-seed0.json.{dead}.tmp", folder / f".write-probe-{dead}.tmp"]
    kept = folder / f".adam-seed1.json.{alive}.tmp"
    for p in (*left, kept):
        p.write_text("{")
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / f".state-00001.npz.{dead}.tmp").write_bytes(b"PK")
    assert driver.run_panel(spec, InlineExecutor(), tmp_path) == []  # fresh: nothing to rerun
    assert not any(p.exists() for p in left) and kept.exists()
    [row] = store.scan(tmp_path, specs=[spec])
    assert row["fresh"] == 2 and not row["invalid"]  # a temp file is never a result
    train_run(spec, "adam", {"lr": 1e-2}, 0, checkpoint_dir=ck, checkpoint_every_s=0)
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.json", "state-00002.npz"]


def test_git_ignores_the_temporary_files():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    names = ["results/fig1-mnist/paper/.adam-seed0.json.4242.tmp",
             "results/fig1-mnist/paper/.write-probe-4242.tmp",
             "results/fig1-mnist/paper/.tune-adam.json.17.tmp"]
    out = subprocess.run(["git", "check-ignore", *names], cwd=REPO, capture_output=True,
                         text=True)
    assert out.stdout.split() == names
    kept = subprocess.run(["git", "check-ignore", "results/fig1-mnist/paper/adam-seed0.json"],
                          cwd=REPO, capture_output=True, text=True)
    assert kept.returncode == 1  # results themselves are committed


@pytest.mark.parametrize("cmd", ["list", "status"])
@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_list_and_status_on_a_missing_results_folder_say_so(tmp_path, capsys, cmd, kind):
    root = tmp_path / "results"
    if kind == "a file":
        root.write_text("")
    assert main([cmd, "--results", str(root)]) == 1
    out = capsys.readouterr()
    what = "is not a folder" if kind == "a file" else "does not exist"
    assert out.out == "" and out.err.count("\n") == 1
    assert out.err.startswith(f"error: the results folder {root} {what}")


@pytest.mark.parametrize("argv", [["list"], ["status"], ["run", "fig1-mnist", "--workers", "1"],
                                  ["tune", "fig1-mnist", "--workers", "1"], ["data", "check"],
                                  ["data", "fetch", "mnist", "--from", "."]])
def test_an_offline_flag_that_is_not_understood_is_a_one_line_cli_error(
        tmp_path, monkeypatch, capsys, argv):
    monkeypatch.setenv("ADAMLAB_OFFLINE", "maybe")
    monkeypatch.setenv("ADAMLAB_RESULTS", str(tmp_path / "res"))
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path / "data"))
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == ("error: ADAMLAB_OFFLINE='maybe' is not understood: set it to 1, true, "
                       "yes or on, or to 0, false, no, off or empty\n")
    assert not any(tmp_path.iterdir())  # nothing was started


def test_an_offline_flag_that_is_not_understood_stops_a_loader_even_with_the_files_there(
        tmp_path, monkeypatch):
    body = b"stand-in"
    res = dataclasses.replace(mnist.ARCHIVES["test_labels"], size=len(body),
                              checksum=_store.Checksum("sha256", hashlib.sha256(body).hexdigest()))
    res.path(tmp_path).parent.mkdir(parents=True)
    res.path(tmp_path).write_bytes(body)
    assert _store.verify(res, tmp_path) == res.path(tmp_path)
    monkeypatch.setenv("ADAMLAB_OFFLINE", "maybe")
    with pytest.raises(_store.SettingError, match="ADAMLAB_OFFLINE='maybe' is not understood"):
        _store.verify(res, tmp_path)
    with pytest.raises(_store.SettingError):
        mnist.load_mnist(root=tmp_path)


# ----------------------------------------------------------------------------- fetch --from


def pinned(res, body: bytes):
    return dataclasses.replace(res, size=len(body),
                               checksum=_store.Checksum("sha256", hashlib.sha256(body).hexdigest()))


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """A local copy with stand-in CIFAR-10 files (pinned): gzipped batches as in the CI copy,
    the meta file plain, no test batch."""
    src = tmp_path / "copy"
    folder = src / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    train = []
    for i, res in enumerate(cifar10.TRAIN):
        body = bytes([i]) * 3073
        with gzip.open(folder / f"data_batch_{i + 1}.bin.gz", "wb") as f:
            f.write(body)
        train.append(pinned(res, body))
    meta = b"airplane\nautomobile\n"
    (folder / "batches.meta.txt").write_bytes(meta)
    monkeypatch.setattr(cifar10, "TRAIN", tuple(train))
    monkeypatch.setattr(cifar10, "META", pinned(cifar10.META, meta))
    monkeypatch.setattr(cifar10, "EXTRACTED", tuple(train) + (cifar10.TEST, cifar10.META))
    return src


def test_fetch_from_a_local_copy_gunzips_and_verifies(tmp_path, monkeypatch, capsys, fake_cifar):
    dest = tmp_path / "data"
    monkeypatch.setenv("ADAMLAB_DATA", str(dest))
    assert main(["data", "fetch", "cifar10", "--from", str(fake_cifar)]) == 0
    out = capsys.readouterr().out
    for res in (*cifar10.TRAIN, cifar10.META):
        assert f"ok  {res.path(dest)}" in out and _store.is_verified(res, dest)
    assert res.path(dest).read_bytes() == b"airplane\nautomobile\n"
    assert cifar10.TRAIN[2].path(dest).read_bytes() == bytes([2]) * 3073
    assert (f"note: cifar10: {fake_cifar} does not hold "
            f"cifar10/cifar-10-batches-bin/test_batch.bin") in out
    assert not list(fake_cifar.rglob(".*"))  # nothing written in the copy
    # a second time keeps what is there and verified
    before = cifar10.TRAIN[0].path(dest).stat().st_ino
    assert main(["data", "fetch", "cifar10", "--from", str(fake_cifar)]) == 0
    assert cifar10.TRAIN[0].path(dest).stat().st_ino == before


def test_fetch_from_refuses_a_copy_that_is_not_the_official_file(tmp_path, capsys, monkeypatch,
                                                                fake_cifar):
    dest = tmp_path / "data"
    monkeypatch.setenv("ADAMLAB_DATA", str(dest))
    bad = fake_cifar / "cifar10" / "cifar-10-batches-bin" / "data_batch_4.bin.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00" * 3073)
    (fake_cifar / "cifar10" / "cifar-10-batches-bin" / "data_batch_5.bin.gz").write_bytes(b"\x1f\x8b")
    code = main(["data", "fetch", "all", "--from", str(fake_cifar)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: cifar10: {bad} is not the official data_batch_4.bin (sha256 " in err
    assert "nothing was copied: replace it with a good copy" in err
    assert f"error: mnist: {fake_cifar} holds no mnist/train-images-idx3-ubyte.gz[.gz]" in err
    folder = dest / "cifar10" / "cifar-10-batches-bin"
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == [
        f"data_batch_{i}.bin" for i in (1, 2, 3)]  # nothing unverified, no .part files
    with pytest.raises(_store.FormatError, match="not a complete gzip file"):
        _store.copy_in(cifar10.TRAIN[4], fake_cifar / "cifar10" / "cifar-10-batches-bin"
                       / "data_batch_5.bin.gz", dest)
    assert main(["data", "fetch", "mnist", "--from", str(tmp_path / "nowhere")]) == 2
    assert "--from" in capsys.readouterr().err


def test_fetch_from_a_repacked_imdb_tarball(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    acl = pin(monkeypatch, scratch)
    src = tmp_path / "copy" / "imdb"
    src.mkdir(parents=True)
    with gzip.open(src / "imdb.vocab.gz", "wb") as f:
        f.write((acl / "imdb.vocab").read_bytes())
    (acl / "imdb.vocab").unlink()
    for split in ("train", "test"):
        (acl / split / "labeledBow.feat").unlink()
    with tarfile.open(src / "reviews-repack.tar.gz", "w:gz") as tf:
        tf.add(acl, arcname="aclImdb")
    dest = tmp_path / "data"
    paths = fetch_from("imdb", tmp_path / "copy", dest)
    assert paths == [imdb.VOCAB.path(dest), dest / "imdb" / "aclImdb"]
    assert imdb.verify_reviews(dest) and _store.is_verified(imdb.VOCAB, dest)
    # a tarball whose reviews differ is refused, and nothing of it is kept
    other = tmp_path / "data2"
    (acl / "train" / "pos" / "1_7.txt").write_text("Edited.")
    with tarfile.open(src / "reviews-repack.tar.gz", "w:gz") as tf:
        tf.add(acl, arcname="aclImdb")
    with pytest.raises(_store.ChecksumError, match="are not the official ones .* nothing was kept"):
        fetch_from("imdb", tmp_path / "copy", other)
    assert not (other / "imdb" / "aclImdb").exists()


def test_fetch_from_the_shared_copy_gives_verified_mnist(tmp_path, monkeypatch, capsys):
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"no shared copy at {SHARED_DATA}")
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path))
    assert main(["data", "fetch", "mnist", "--from", str(SHARED_DATA)]) == 0
    assert main(["data", "check", "mnist"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "mnist: complete and verified"
    x_train, y_train, _, _ = mnist.load_mnist(root=tmp_path)
    assert x_train.shape == (60_000, 784) and np.bincount(y_train)[0] == 5923
