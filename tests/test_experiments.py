"""The §6 experiment engine: specs, tuning, the runner, resume, results, executors and the CLI.

Everything runs on a tiny synthetic problem (300 examples, 20 features, 3 classes: 3 steps per
epoch) and writes only to pytest's temporary folders; one smoke test runs the real quick preset of
fig1-mnist for one optimizer and seed (skipped without MNIST).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adamlab.cli import main
from adamlab.experiments import cli as ecli
from adamlab.experiments import driver, results as store, runner, specs
from adamlab.experiments.executors import InlineExecutor, dask_executor, process_pool
from adamlab.experiments.runner import CheckpointError, train_run
from adamlab.experiments.specs import (ADAM, NESTEROV_MU, DataSpec, Grid, ModelSpec,
                                       OptimizerSpec, PanelSpec, TuneSpec)
from adamlab.experiments.tuning import tune_optimizer

REPO = Path(__file__).resolve().parent.parent


def tiny(**changes) -> PanelSpec:
    base = dict(
        panel="tiny", preset="quick", title="tiny synthetic problem",
        data=DataSpec("synthetic", n_train=300, n_features=20, n_classes=3, subset_seed=1),
        model=ModelSpec("logreg", sizes=(20, 3), weight_decay=1e-3),
        optimizers=(OptimizerSpec("adam", "Adam", Grid(-6, -1), fixed=ADAM),
                    OptimizerSpec("sgdnesterov", "Nesterov", Grid(-4, 1), momentum=NESTEROV_MU)),
        epochs=3, tune=TuneSpec(budget_epochs=1), seeds=(0, 1))
    base.update(changes)
    return PanelSpec(**base)


def tiny_mlp(**changes) -> PanelSpec:
    return tiny(model=ModelSpec("mlp", sizes=(20, 16, 3), input_dropout=0.2, hidden_dropout=0.5),
                optimizers=(OptimizerSpec("adam", "Adam", Grid(-6, -1), fixed=ADAM),
                            OptimizerSpec("adam-nodrop", "Adam", Grid(-6, -1), fixed=ADAM,
                                          dropout=False)),
                **changes)


CURVES = ("train_cost", "full_cost_epochs", "full_cost", "diverged", "completed_epochs")


def curves(run):
    return {k: run[k] for k in CURVES}


# ----------------------------------------------------------------------------- specs


def test_spec_hash_is_stable_and_sensitive():
    a, b = tiny(), tiny()
    assert a.spec_hash() == b.spec_hash() and len(a.spec_hash()) == 64
    # Pinned: the canonical JSON (sorted keys, no spaces) must not change by accident, on any
    # machine; a deliberate change of the spec format bumps specs.ENGINE_VERSION.
    assert a.spec_hash() == "4cfded06869a4d4780a525e2121db05620166baabd4fa0faa451b448d0070b56" \
        or pytest.fail(f"tiny spec hash changed: {a.spec_hash()}")
    assert tiny(model=ModelSpec("logreg", sizes=(20, 3), weight_decay=2e-3)).spec_hash() \
        != a.spec_hash()
    assert tiny(epochs=4).spec_hash() != a.spec_hash()
    assert specs.spec_from_dict(json.loads(a.canonical_json())) == a
    for panel in specs.PANELS:
        for preset in specs.presets_of(panel):
            s = specs.get_spec(panel, preset)
            assert specs.spec_from_dict(s.to_dict()).spec_hash() == s.spec_hash()
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.epochs = 5


def test_paper_presets_follow_the_paper():
    m = specs.get_spec("fig1-mnist", "paper")
    assert (m.epochs, m.batch_size, m.data.n_train) == (45, 128, None)
    assert [o.algorithm for o in m.optimizers] == ["Adam", "Nesterov", "AdaGrad"]
    assert {o.schedule for o in m.optimizers} == {"inverse_sqrt"}
    i = specs.get_spec("fig1-imdb", "paper")
    assert (i.epochs, i.data.num_words, i.model.input_dropout) == (160, 10_000, 0.5)
    assert [(o.algorithm, o.dropout) for o in i.optimizers] == [
        ("AdaGrad", False), ("AdaGrad", True), ("RMSProp", True), ("Nesterov", True),
        ("Adam", True)]
    f = specs.get_spec("fig2a-mlp", "paper")
    assert (f.epochs, f.model.sizes) == (200, (784, 1000, 1000, 10))
    assert f.model.input_dropout > 0 and f.model.hidden_dropout > 0
    assert [o.algorithm for o in f.optimizers] == ["AdaGrad", "RMSProp", "Nesterov", "AdaDelta",
                                                   "Adam"]
    for s in (m, i, f, *(specs.get_spec(p, "quick") for p in specs.PANELS)):
        if s.tune is None:  # a fixed grid (fig4): its grid is the experiment (test_fig4)
            continue
        assert len(s.seeds) >= 3
        for o in s.optimizers:
            assert len(o.lr.values()) >= 6, (s.panel, o.name)
            v = np.log10(o.lr.values())
            assert np.allclose(np.diff(v), 1 / o.lr.per_decade, atol=1e-5)  # log-spaced
            if o.algorithm == "Nesterov":
                assert o.momentum is not None and len(o.momentum.values()) >= 3
    assert ecli.PANEL_NAMES == tuple(specs.PANELS) and ecli.PRESET_NAMES == specs.PRESETS


def test_unknown_panel_preset_optimizer_seed():
    with pytest.raises(specs.SpecError, match="fig1-mnist"):
        specs.get_spec("fig9")
    with pytest.raises(specs.SpecError, match="quick, paper"):
        specs.get_spec("fig1-mnist", "huge")
    with pytest.raises(KeyError, match="adagrad"):
        specs.get_spec("fig1-mnist").optimizer("lbfgs")
    with pytest.raises(KeyError, match=r"\[0, 1\]"):
        tiny().epochs_of(7)


# ----------------------------------------------------------------------------- runner


def test_runner_logs_the_epoch_average_and_the_full_cost(tmp_path):
    spec = tiny(epochs=4, eval_every=3)
    run = train_run(spec, "adam", {"lr": 0.01}, 0)
    assert run["full_cost_epochs"] == [0, 1, 3, 4] == list(spec.eval_epochs())
    # An independent replay of the same run: the same generators, the same minibatches.
    x, y = runner.load_data(spec.data)
    g = runner.generators(spec, 0, "adam")
    model = runner.build_model(spec, spec.optimizer("adam"), g["init"])
    opt = runner.build_optimizer(spec.optimizer("adam"), {"lr": 0.01})
    full = [runner.full_cost(model, x, y)]
    avg = []
    for epoch in range(1, 5):
        order = g["order"].permutation(300)
        costs = []
        for s in range(0, 300, 128):
            i = order[s:s + 128]
            costs.append((model.loss_and_grads(x[i], y[i], rng=g["dropout"]), len(i)))
            opt.update(model.params, model.grads)
        avg.append(sum(c * n for c, n in costs) / 300)
        if epoch in (1, 3, 4):
            full.append(runner.full_cost(model, x, y))
    assert run["train_cost"] == avg
    assert run["full_cost"] == full
    assert run["diverged"] is None and run["completed_epochs"] == 4
    assert full[-1] < full[0] - 0.3  # it learns
    # the full cost includes the L2 term, logged apart as well
    lam = spec.model.weight_decay
    w = model.params["fc.W"]
    assert math.isclose(run["full_penalty"][-1],
                        0.5 * lam * float(np.sum(w.astype(np.float64) ** 2)), rel_tol=1e-5)
    assert 0 < run["full_penalty"][-1] < run["full_cost"][-1]


def test_shared_initialisation_and_seeded_streams():
    spec = tiny_mlp()
    a = runner.build_model(spec, spec.optimizer("adam"), runner.generators(spec, 0, "adam")["init"])
    b = runner.build_model(spec, spec.optimizer("adam-nodrop"),
                           runner.generators(spec, 0, "adam-nodrop")["init"])
    c = runner.build_model(spec, spec.optimizer("adam"), runner.generators(spec, 1, "adam")["init"])
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["fc1.W"], c.params["fc1.W"])
    r0 = train_run(spec, "adam", {"lr": 1e-3}, 0)
    assert r0["train_cost"] == train_run(spec, "adam", {"lr": 1e-3}, 0)["train_cost"]
    assert r0["train_cost"] != train_run(spec, "adam", {"lr": 1e-3}, 1)["train_cost"]


def test_a_diverged_run_is_recorded_not_dropped(tmp_path):
    spec = tiny()
    run = train_run(spec, "sgdnesterov", {"lr": 1e6, "momentum": 0.99}, 0)
    assert run["diverged"] is not None, run["train_cost"]
    assert run["diverged"]["epoch"] >= 1 and "non-finite" in run["diverged"]["reason"]
    assert run["completed_epochs"] == len(run["train_cost"]) < spec.epochs
    assert all(c is None or math.isfinite(c) for c in run["full_cost"])
    # ... and it is written like any other run (JSON without NaN)
    path = store.write_result(tmp_path, spec, run, None)
    rec = json.loads(path.read_text())
    assert rec["diverged"] == run["diverged"]


# ----------------------------------------------------------------------------- resume


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("make", [tiny, tiny_mlp], ids=["logreg", "mlp-dropout"])
def test_resume_mid_epoch_is_bit_for_bit(tmp_path, make):
    spec = make(epochs=4, eval_every=2)
    hyper = {"lr": 3e-3}
    whole = train_run(spec, "adam", hyper, 1)

    def stop(epoch, step):
        if (epoch, step) == (3, 2):  # the middle of the third epoch (3 steps per epoch)
            raise Interrupt

    ck = tmp_path / "ck"
    with pytest.raises(Interrupt):
        train_run(spec, "adam", hyper, 1, checkpoint_dir=ck, on_step=stop,
                  checkpoint_every_s=0)
    meta = json.loads((ck / "checkpoint.json").read_text())
    assert meta["epoch"] == 2 and set(meta["rng"]) == {"init", "order", "dropout"}
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.json", "state-00002.npz"]
    with np.load(ck / meta["npz"], allow_pickle=False) as z:
        assert any(k.startswith("opt/") for k in z.files)
    resumed = train_run(spec, "adam", hyper, 1, checkpoint_dir=ck, resume=True,
                        checkpoint_every_s=0)
    assert resumed["resumed_at_epochs"] == [2]
    assert curves(resumed) == curves(whole)
    # without --resume the checkpoint is ignored and overwritten: a fresh run
    fresh = train_run(spec, "adam", hyper, 1, checkpoint_dir=ck, checkpoint_every_s=0)
    assert fresh["resumed_at_epochs"] == [] and curves(fresh) == curves(whole)
    assert json.loads((ck / "checkpoint.json").read_text())["epoch"] == 4
    # by default a checkpoint waits for 30 s to pass: none of these short epochs writes one
    quiet = tmp_path / "quiet"
    train_run(spec, "adam", hyper, 1, checkpoint_dir=quiet)
    assert not quiet.exists()


def test_run_panel_resume_continues_an_interrupted_run(tmp_path):
    spec = tiny(epochs=3, optimizers=tiny().optimizers[:1], seeds=(0,))
    whole = driver.run_panel(spec, InlineExecutor(), tmp_path / "whole")
    results = tmp_path / "res"
    chosen = driver.tune_panel(spec, InlineExecutor(), results)["adam"]["chosen"]
    where = runner.checkpoint_path(store.checkpoints_dir(results), spec, "adam", 0)

    def stop(epoch, step):
        if (epoch, step) == (2, 2):
            raise Interrupt

    with pytest.raises(Interrupt):
        train_run(spec, "adam", chosen, 0, checkpoint_dir=where, on_step=stop,
                  checkpoint_every_s=0)
    [path] = driver.run_panel(spec, InlineExecutor(), results, resume=True)
    rec, ref = json.loads(path.read_text()), json.loads(whole[0].read_text())
    assert rec["resumed_at_epochs"] == [1] and curves(rec) == curves(ref)
    assert not where.exists()  # the checkpoint goes once the result is written


def test_progress_bar_changes_nothing(capsys):
    pytest.importorskip("tqdm")
    spec = tiny(epochs=2)
    quiet = train_run(spec, "adam", {"lr": 1e-2}, 0)
    shown = train_run(spec, "adam", {"lr": 1e-2}, 0, progress=True)
    assert curves(shown) == curves(quiet)
    assert "tiny adam seed0" in capsys.readouterr().err


def test_a_checkpoint_of_another_spec_is_refused(tmp_path):
    ck = tmp_path / "ck"
    a = tiny(epochs=2)
    b = tiny(epochs=2, model=ModelSpec("logreg", sizes=(20, 3), weight_decay=5e-3))
    train_run(a, "adam", {"lr": 1e-3}, 0, checkpoint_dir=ck, checkpoint_every_s=0)
    with pytest.raises(CheckpointError, match="spec_hash.*another|another.*spec_hash"):
        train_run(b, "adam", {"lr": 1e-3}, 0, checkpoint_dir=ck, resume=True)
    with pytest.raises(CheckpointError, match="hyper"):
        train_run(a, "adam", {"lr": 2e-3}, 0, checkpoint_dir=ck, resume=True)
    # the driver refuses it before tuning anything
    results = tmp_path / "res"
    where = runner.checkpoint_path(store.checkpoints_dir(results), b, "adam", 0)
    where.parent.mkdir(parents=True)
    os.rename(ck, where)
    with pytest.raises(CheckpointError, match="another experiment"):
        driver.run_panel(b, InlineExecutor(), results, optimizers=["adam"], seeds=[0],
                         resume=True)
    assert not store.tuning_path(results, b, "adam").exists()


# ----------------------------------------------------------------------------- tuning


def test_tuning_records_every_point_and_widens_an_edge():
    # Adam's grid starts far too low: the best step size is on the high edge, so it widens.
    spec = tiny(optimizers=(OptimizerSpec("adam", "Adam", Grid(-10, -5), fixed=ADAM),),
                tune=TuneSpec(budget_epochs=2, widen_by=2, max_widenings=2))
    rec = tune_optimizer(spec, "adam", InlineExecutor())
    assert rec["initial_grid"]["lr"] == [1e-5, 3.16228e-5, 1e-4, 3.16228e-4, 1e-3, 3.16228e-3]
    assert [w["side"] for w in rec["widenings"]] == ["high", "high"]
    assert rec["final_grid"]["lr"][-4:] == [1e-2, 3.16228e-2, 0.1, 0.316228]
    assert len(rec["points"]) == 10
    crits = [p["criterion"] for p in rec["points"]]
    assert rec["chosen_criterion"] == min(c for c in crits if c is not None)
    assert rec["chosen"] == rec["points"][crits.index(rec["chosen_criterion"])]["hyper"]
    # step sizes too small barely move the cost: the criterion falls along the initial grid
    assert crits[0] > crits[5]
    assert rec["budget_epochs"] == 2 and rec["criterion"] == "train_cost_last_epoch"
    assert rec["machine"]["cpu_model"] and rec["wall_seconds"] > 0
    assert rec["flagged"] == bool(rec["at_edge"])


def test_tuning_with_momentum_records_diverged_points_and_never_chooses_them():
    spec = tiny(optimizers=(OptimizerSpec("sgdnesterov", "Nesterov", Grid(-2, 9, per_decade=1),
                                          momentum=NESTEROV_MU),),
                tune=TuneSpec(budget_epochs=2, max_widenings=1))
    rec = tune_optimizer(spec, "sgdnesterov", InlineExecutor())
    assert len(rec["points"]) >= 12 * 3
    assert {p["hyper"]["momentum"] for p in rec["points"]} >= {0.99, 0.968377, 0.9}
    diverged = [p for p in rec["points"] if p["diverged"] is not None]
    assert diverged and all(p["criterion"] is None for p in diverged)  # recorded, never chosen
    assert rec["chosen"] not in [p["hyper"] for p in diverged]
    assert rec["chosen"]["lr"] < 1e9
    assert "lr" not in rec["at_edge"]  # the step-size grid brackets the optimum: no widening
    assert all(w["axis"] == "momentum" for w in rec["widenings"])
    assert all(0.0 <= p["hyper"]["momentum"] <= 0.999 for p in rec["points"])  # the bounds


def test_a_momentum_grid_stops_at_its_bound_and_the_choice_is_flagged():
    # With μ ≥ 0.9 only and a budget of 2 steps, the best momentum is the lowest of the grid:
    # it widens down to μ = 0 (the bound), and a choice there is flagged.
    mu = Grid(-2, -1, per_decade=1, kind="one_minus", k_min=-3, k_max=0)  # μ = 0.99, 0.9
    spec = tiny(data=DataSpec("synthetic", n_train=200, n_features=20, n_classes=3, subset_seed=1),
                optimizers=(OptimizerSpec("nag", "Nesterov", Grid(-1, 4, per_decade=1),
                                          momentum=mu),),
                tune=TuneSpec(budget_epochs=1, widen_by=1, max_widenings=3))
    rec = tune_optimizer(spec, "nag", InlineExecutor())
    moms = rec["final_grid"]["momentum"]
    assert rec["widenings"][0] == {"axis": "momentum", "side": "low", "added": [0.0]}
    assert moms == [0.99, 0.9, 0.0]  # stopped at the bound μ = 0 although rounds were left
    if rec["chosen"]["momentum"] in (min(moms), max(moms)):
        assert rec["flagged"] and "momentum" in rec["at_edge"]
    assert rec["widening_rounds"] <= 3
    assert rec["flagged"] == bool(rec["at_edge"])


# ----------------------------------------------------------------------------- results


def test_results_carry_provenance_and_stale_ones_are_refused(tmp_path):
    spec = tiny(epochs=2)
    written = driver.run_panel(spec, InlineExecutor(), tmp_path)
    assert sorted(p.name for p in written) == ["adam-seed0.json", "adam-seed1.json",
                                               "sgdnesterov-seed0.json", "sgdnesterov-seed1.json"]
    assert all(p.parent == tmp_path / "tiny" / "quick" for p in written)
    assert not any(store.checkpoints_dir(tmp_path).rglob("*.npz"))  # removed once written
    rec = json.loads(written[0].read_text())
    for key in ("train_cost", "full_cost", "spec", "spec_hash", "seed", "hyper", "tuning",
                "wall_seconds", "epoch_seconds"):
        assert key in rec, key
    assert rec["spec_hash"] == spec.spec_hash() and specs.spec_from_dict(rec["spec"]) == spec
    assert rec["hyper"] == rec["tuning"]["chosen"] and rec["tuning"]["points"]
    m = rec["machine"]
    assert m["cpu_model"] and m["packages"]["numpy"] == np.__version__
    assert m["OPENBLAS_CORETYPE"] == os.environ.get("OPENBLAS_CORETYPE", "unset")
    assert set(m["thread_env"]) >= {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}
    assert isinstance(m["adamlab_optim_threads"], int)
    prov = rec["provenance"]
    assert prov["versions"]["numpy"] == np.__version__ and "git_commit" in prov
    if (REPO / ".git").exists():
        assert len(prov["git_commit"] or "") == 40
    assert store.tuning_path(tmp_path, spec, "adam").is_file()

    # a second run skips what has a fresh result, unless forced
    assert driver.run_panel(spec, InlineExecutor(), tmp_path) == []
    assert len(driver.run_panel(spec, InlineExecutor(), tmp_path, optimizers=["adam"],
                                force=True)) == 2
    loaded = store.load_results(spec, tmp_path)
    assert set(loaded) == {(o, s) for o in ("adam", "sgdnesterov") for s in (0, 1)}
    mean, lo, hi, n = store.seed_band(loaded, "adam")
    runs = np.array([loaded[("adam", s)]["train_cost"] for s in (0, 1)])
    assert n == 2 and np.array_equal(lo, runs.min(0)) and np.array_equal(hi, runs.max(0))
    assert np.allclose(mean, runs.mean(0)) and (lo < hi).all()
    changed = tiny(epochs=2, model=ModelSpec("logreg", sizes=(20, 3), weight_decay=1e-2))
    with pytest.raises(store.StaleResultError, match="adam-seed0.json"):
        store.load_results(changed, tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        store.load_results(spec, tmp_path, seeds=[0, 1, 2])
    # a stale tuning record is not reused, and refused where asked for strictly
    assert store.load_tuning(tmp_path, changed, "adam") is None
    with pytest.raises(store.StaleResultError, match="tune-adam.json"):
        store.load_tuning(tmp_path, changed, "adam", strict=True)
    assert store.load_tuning(tmp_path, spec, "adam", strict=True)["chosen"] \
        == loaded[("adam", 0)]["hyper"]


# ----------------------------------------------------------------------------- executors


def test_process_pool_sweep_matches_inline_with_one_blas_thread(tmp_path):
    spec = tiny(epochs=2, optimizers=tiny().optimizers[:1])
    inline = driver.run_panel(spec, InlineExecutor(), tmp_path / "inline")
    with process_pool(2) as ex:
        pooled = driver.run_panel(spec, ex, tmp_path / "pool", workers=2)
    a = {p.name: json.loads(p.read_text()) for p in inline}
    b = {p.name: json.loads(p.read_text()) for p in pooled}
    assert set(a) == set(b) == {"adam-seed0.json", "adam-seed1.json"}
    for name in a:
        assert curves(a[name]) == curves(b[name]) and a[name]["hyper"] == b[name]["hyper"]
        m = b[name]["machine"]
        assert m["pid"] != os.getpid()
        assert m["thread_env"]["OPENBLAS_NUM_THREADS"] == "1"
        assert m["adamlab_optim_threads"] == 1
        if "threads" in m["openblas"]:
            assert m["openblas"]["threads"] == 1


def test_dask_local_cluster_sweep(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = tiny(epochs=2, seeds=(0, 1), optimizers=tiny().optimizers[:1])
    inline = driver.run_panel(spec, InlineExecutor(), tmp_path / "inline")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        ex = dask_executor(cluster.scheduler_address)
        try:
            written = driver.run_panel(spec, ex, tmp_path / "dask")
        finally:
            ex.shutdown()
    assert sorted(p.name for p in written) == sorted(p.name for p in inline)
    for p, q in zip(sorted(written), sorted(inline)):
        assert curves(json.loads(p.read_text())) == curves(json.loads(q.read_text()))


# ----------------------------------------------------------------------------- CLI


def test_cli_bad_input_exits_non_zero(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("adamlab.experiments.executors.DASK_TIMEOUT_S", 1.0)
    for argv in (["run", "fig9", "--results", str(tmp_path)],
                 ["run", "fig1-mnist", "--preset", "huge", "--results", str(tmp_path)],
                 ["tune", "nope"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert main(["run", "fig1-mnist", "--optimizer", "lbfgs", "--results", str(tmp_path)]) == 2
    assert "no optimizer 'lbfgs'" in capsys.readouterr().err
    assert main(["run", "fig1-mnist", "--seed", "9", "--workers", "1",
                 "--results", str(tmp_path)]) == 2
    assert "no seed 9" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing is created for a refused command
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["run", "fig1-mnist", "--results", str(blocker / "res")]) == 2
    assert "not writable" in capsys.readouterr().err
    assert main(["run", "fig1-mnist", "--workers", "0", "--results", str(tmp_path)]) == 2
    assert main(["run", "fig1-mnist", "--scheduler", "tcp://127.0.0.1:9", "--workers", "1",
                 "--results", str(tmp_path)]) == 2
    assert "scheduler" in capsys.readouterr().err


def test_cli_names_missing_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ADAMLAB_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("ADAMLAB_OFFLINE", "1")
    monkeypatch.setattr(runner, "_DATA", {})
    assert main(["run", "fig1-mnist", "--optimizer", "adam", "--workers", "1",
                 "--results", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert "adamlab data fetch" in err and "Traceback" not in err


def test_cli_refuses_a_checkpoint_of_another_spec(tmp_path, capsys):
    spec = specs.get_spec("fig1-mnist", "quick")
    where = runner.checkpoint_path(store.checkpoints_dir(tmp_path), spec, "adam", 0)
    where.parent.mkdir(parents=True)
    train_run(tiny(epochs=1), "adam", {"lr": 1e-3}, 0, checkpoint_dir=where, checkpoint_every_s=0)
    assert main(["run", "fig1-mnist", "--optimizer", "adam", "--seed", "0", "--resume",
                 "--workers", "1", "--results", str(tmp_path)]) == 2
    assert "another experiment" in capsys.readouterr().err


def test_cli_subprocess_list_and_status(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "ADAMLAB_RESULTS": str(tmp_path)}
    code = "import sys; from adamlab.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", code, "list"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "fig2a-mlp" in out.stdout and str(tmp_path) in out.stdout
    bad = subprocess.run([sys.executable, "-c", code, "run", "fig1-imdb", "--optimizer", "adam"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "adam+dropout" in bad.stderr
    st = subprocess.run([sys.executable, "-c", code, "status"], env=env, capture_output=True,
                        text=True, timeout=60)
    assert st.returncode == 0 and "no run in progress" in st.stdout


def test_progress_bar_only_in_a_terminal(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setenv("CI", "true")
    assert runner.want_progress() == "lines"
    monkeypatch.delenv("CI")
    monkeypatch.setattr(sys, "stderr", open(os.devnull, "w"))
    assert runner.want_progress() == "lines"
    monkeypatch.setenv("ADAMLAB_NO_PROGRESS", "1")
    assert runner.want_progress() is None


def test_quick_preset_smoke_on_real_mnist(tmp_path, capsys):
    from adamlab.data import MissingDataError, load_mnist
    try:
        load_mnist()
    except (MissingDataError, OSError) as e:
        pytest.skip(f"MNIST not available: {e}")
    assert main(["run", "fig1-mnist", "--preset", "quick", "--optimizer", "adam", "--seed", "0",
                 "--workers", "1", "--results", str(tmp_path)]) == 0
    spec = specs.get_spec("fig1-mnist", "quick")
    rec = store.load_results(spec, tmp_path, optimizers=["adam"], seeds=[0])[("adam", 0)]
    assert len(rec["train_cost"]) == spec.epochs
    assert rec["full_cost"][-1] < 0.6 < rec["full_cost"][0]  # ln 10 = 2.3 at the start
    assert main(["list", "--results", str(tmp_path)]) == 0
    assert "fig1-mnist quick" in capsys.readouterr().out.replace("  ", " ")


def test_describe_states_the_spec():
    from adamlab.experiments.specs import describe

    text = describe(specs.get_spec("fig2a-mlp", "paper"), {"adam": "Adam"})
    assert "seeds 0 (200 epochs), 1 (20 epochs), 2 (20 epochs)" in text
    assert "dropout 0.2 on the inputs, 0.5 on the hidden units" in text
    assert "- Adam: Adam, constant alpha" in text and "- adagrad: AdaGrad" in text
    assert "momentum: 3 values of 1 - mu" in text
    assert "after epochs 0, 1, 10, 20, ..., 200" in text
    assert text.endswith(specs.get_spec("fig2a-mlp", "paper").spec_hash()[:16])
    decay = describe(specs.get_spec("fig2a-decay", "paper"))
    assert "adam-decay: Adam, alpha_t = alpha/sqrt(t)" in decay
    for panel in specs.PANELS:   # every line fits the book's 96-character outputs
        for preset in specs.presets_of(panel):
            assert max(map(len, describe(specs.get_spec(panel, preset)).splitlines())) <= 96
