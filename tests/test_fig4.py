"""Figure 4 (§6.4): the ``fig4`` spec and the engine's support for a fixed grid (GridSpec).

Most tests run a tiny stand-in (300 random binary "images" of 20 pixels, a 20-8-3 VAE, minibatch
32: 10 steps per epoch) registered as the dataset ``tinybin``; one runs the real quick preset for
two grid points through the CLI (skipped without MNIST).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest

from adamlab import optim
from adamlab.cli import main
from adamlab.experiments import cli as ecli
from adamlab.experiments import driver, grid, results as store, runner, specs
from adamlab.experiments.executors import InlineExecutor
from adamlab.experiments.runner import train_run
from adamlab.experiments.specs import DataSpec, ModelSpec

from test_experiments import Interrupt

CORRECTED = "adam-b1_0.9-b2_0.9999-lr_1e-3"
UNCORRECTED = "nobc-b1_0.9-b2_0.9999-lr_1e-3"


def _tinybin(data):
    rng = np.random.default_rng(data.subset_seed)
    x = (rng.random((300, 20)) < np.linspace(0.1, 0.9, 20)).astype(np.float32)
    return x, np.zeros(300, dtype=np.int64)


@pytest.fixture(autouse=True)
def tinybin(monkeypatch):
    monkeypatch.setitem(runner.DATASETS, "tinybin", _tinybin)


def tiny_grid(*names, **changes) -> specs.GridSpec:
    """fig4 quick on the tiny stand-in, with the grid points ``names`` (default: two)."""
    base = specs.get_spec("fig4", "quick")
    keep = names or (CORRECTED, UNCORRECTED)
    return dataclasses.replace(
        base, **{"panel": "tinygrid", "data": DataSpec("tinybin"),
                 "model": ModelSpec("vae", sizes=(20, 8, 3)), "batch_size": 32,
                 "optimizers": tuple(base.optimizer(n) for n in keep), "epochs": 3,
                 "step_log_every": 3, "eval_n": 100, "eval_samples": 2, **changes})


def lr_of(spec, name):
    return {"lr": spec.optimizer(name).lr.value(spec.optimizer(name).lr.lo)}


# ----------------------------------------------------------------------------- the spec


def test_fig4_spec_is_the_papers_grid_and_its_hash_is_pinned():
    paper, quick = specs.get_spec("fig4", "paper"), specs.get_spec("fig4", "quick")
    # Pinned: a change of the spec changes every result's freshness; change these on purpose.
    assert paper.spec_hash() == "c6dc117bfe137e89b456c7a38fd30da68e1348128cb9a8e1b98037095b03b13d" \
        or pytest.fail(f"fig4 paper spec hash changed: {paper.spec_hash()}")
    assert quick.spec_hash() == "bae6e8ba06f389438b5171cb6c72e3935536da6abfb199f9d7fdff683195434a" \
        or pytest.fail(f"fig4 quick spec hash changed: {quick.spec_hash()}")
    for s in (paper, quick):
        assert specs.spec_from_dict(json.loads(s.canonical_json())) == s
        assert s.tune is None and s.model == ModelSpec("vae", sizes=(784, 500, 50))
        assert s.data.dataset == "mnist-binary" and s.batch_size == 128 and s.seeds == (0,)
        points = {(dict(o.fixed)["bias_correction"], dict(o.fixed)["beta1"],
                   dict(o.fixed)["beta2"], o.lr.value(o.lr.lo)) for o in s.optimizers}
        assert points == set(itertools.product((True, False), (0.0, 0.9), (0.99, 0.999, 0.9999),
                                               (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)))
        assert len(s.optimizers) == 60 and {o.algorithm for o in s.optimizers} == {"Adam"}
        assert all(dict(o.fixed)["eps"] == 1e-8 and o.schedule == "constant"
                   for o in s.optimizers)
        assert max(map(len, specs.describe(s).splitlines())) <= 96
    assert (paper.epochs, paper.data.n_train, paper.eval_n, paper.eval_samples) == \
        (100, None, 10_000, 10)
    assert {0, 10, 100} <= set(paper.eval_epochs()) and paper.step_log_every == 10
    assert specs.workload(paper) == {"tune_epochs": 0, "run_epochs": 6000, "evaluations": 720,
                                     "runs": 60, "runs_from_search": 0}
    assert "fig4" in ecli.PANEL_NAMES
    # extra seeds over the first 10 epochs ("close points") fit the same spec
    more = dataclasses.replace(paper, seeds=(0, 1, 2), seed_epochs=(100, 10, 10))
    assert more.epochs_of(1) == 10 and more.eval_epochs(more.epochs_of(1)) == (0, 1, 10)
    assert specs.workload(more)["run_epochs"] == 60 * 120
    with pytest.raises(ValueError, match="one-point step-size grid"):
        dataclasses.replace(quick, optimizers=(specs.OptimizerSpec("a", "Adam", specs.Grid(-3, -2)),))


def test_fig4_has_no_search(tmp_path, capsys):
    assert main(["tune", "fig4", "--results", str(tmp_path)]) == 2
    assert "its grid is the experiment" in capsys.readouterr().err


def test_binarisation_is_a_fixed_threshold_at_one_half(monkeypatch):
    import adamlab.data

    x = np.array([[0.0, 0.5, 0.5 + 1e-6, 1.0], [0.2, 0.49, 0.51, 0.99]], dtype=np.float32)
    fake = type("M", (), {"x_train": x, "y_train": np.array([3, 4])})
    monkeypatch.setattr(adamlab.data, "load_mnist", lambda: fake)
    xb, y = grid.binarised_mnist(DataSpec("mnist-binary"))
    assert xb.dtype == np.float32 and list(y) == [3, 4]
    assert xb.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]


# ----------------------------------------------------------------------------- bias correction


@pytest.mark.parametrize("beta1, ratio1", [(0.9, 10.0), (0.0, 100.0)])
def test_uncorrected_step_is_the_corrected_one_times_the_correction(beta1, ratio1):
    """eps = 0: the uncorrected step α·m/√v is (1 − β1^t)/√(1 − β2^t) times Adam's α·m̂/√v̂,
    10x at t = 1 for β1 = 0.9, β2 = 0.9999 and 100x for β1 = 0; both as the literal lines."""
    beta2, lr = 0.9999, 1e-3
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((6, 5))
    on = optim.Adam(lr=lr, beta1=beta1, beta2=beta2, eps=0.0)
    off = optim.Adam(lr=lr, beta1=beta1, beta2=beta2, eps=0.0, bias_correction=False)
    th_on, th_off = {"w": np.zeros(5)}, {"w": np.zeros(5)}
    m, v, th = np.zeros(5), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        before_on, before_off = th_on["w"].copy(), th_off["w"].copy()
        on.update(th_on, {"w": g})
        off.update(th_off, {"w": g})
        step_on, step_off = before_on - th_on["w"], before_off - th_off["w"]
        want = (1 - beta1**t) / math.sqrt(1 - beta2**t)
        np.testing.assert_allclose(step_off / step_on, want, rtol=1e-12)
        if t == 1:
            np.testing.assert_allclose(step_off / step_on, ratio1, rtol=1e-12)
        # the literal uncorrected lines: m, v as Algorithm 1, θ ← θ − α·m/√v (no m̂, v̂)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        th = th - lr * m / np.sqrt(v)
        np.testing.assert_allclose(th_off["w"], th, rtol=1e-12, atol=0)
    # the spec's entries build exactly these optimizers
    spec = specs.get_spec("fig4", "paper")
    for name, corrected in ((CORRECTED, True), (UNCORRECTED, False)):
        o = runner.build_optimizer(spec.optimizer(name), lr_of(spec, name))
        assert isinstance(o, optim.Adam) and o.bias_correction is corrected
        assert (o.beta1, o.beta2, o.eps, o.lr) == (0.9, 0.9999, 1e-8, 1e-3)


# ----------------------------------------------------------------------------- the runner


def test_first_epoch_step_log_has_the_stated_spacing():
    every1 = train_run(tiny_grid(step_log_every=1), CORRECTED, {"lr": 1e-3}, 0)
    every3 = train_run(tiny_grid(), CORRECTED, {"lr": 1e-3}, 0)
    assert every1["steps_per_epoch"] == 10
    assert every1["step_cost_steps"] == list(range(1, 11))  # the first epoch only
    assert every3["step_cost_steps"] == [3, 6, 9]
    # windows of minibatch costs, weighted by size (nine of 32 and one of 12 examples)
    sizes = np.array([32] * 9 + [12])
    costs = np.array(every1["step_cost"])
    assert every1["train_cost"][0] == pytest.approx(np.dot(costs, sizes) / 300, rel=1e-12)
    assert every3["step_cost"] == pytest.approx([costs[i:i + 3].mean() for i in (0, 3, 6)],
                                                rel=1e-12)
    assert every3["train_cost"] == every1["train_cost"]  # the log does not change the run
    two = train_run(tiny_grid(step_log_epochs=2), CORRECTED, {"lr": 1e-3}, 0)
    assert two["step_cost_steps"] == [3, 6, 9, 13, 16, 19]  # windows restart each epoch


def test_a_diverging_run_is_recorded_with_its_epoch_and_step_and_still_written(tmp_path):
    huge = "nobc-b1_0-b2_0.9999-lr_1e-1"
    spec = tiny_grid(huge, CORRECTED)
    run = train_run(spec, huge, {"lr": 1e3}, 0)  # far beyond the grid: NaN within steps
    d = run["diverged"]
    assert d is not None and d["epoch"] == 1 and isinstance(d["step"], int) and d["step"] >= 1
    assert "non-finite" in d["reason"] and run["completed_epochs"] == 0
    assert run["step_cost_steps"] == list(range(3, d["step"], 3))
    assert store.result_problem(run, spec) is None
    # the ceiling: an evaluated cost above it ends the run at that epoch (step null) ...
    low = tiny_grid(huge, CORRECTED, diverge_above=1.0)
    capped = train_run(low, CORRECTED, {"lr": 1e-3}, 0)
    assert (capped["diverged"]["epoch"], capped["diverged"]["step"]) == (1, None)
    assert "evaluated cost" in capped["diverged"]["reason"]
    assert "above the ceiling 1" in capped["diverged"]["reason"]
    assert capped["completed_epochs"] == 1 and len(capped["train_cost"]) == 1
    assert capped["full_cost_epochs"] == [0, 1] and store.result_problem(capped, low) is None
    assert capped["above_ceiling"]["epoch"] == capped["above_ceiling"]["step"] == 1
    # ... a minibatch above it is logged (the first one) and the run goes on
    every1 = train_run(tiny_grid(step_log_every=1), CORRECTED, {"lr": 1e-3}, 0)
    ceiling = max(every1["full_cost"][1:]) + 1e-6
    assert every1["step_cost"][0] > ceiling  # the first minibatch costs more than any later state
    spiky = train_run(tiny_grid(step_log_every=1, diverge_above=ceiling), CORRECTED,
                      {"lr": 1e-3}, 0)
    passed = next(i for i, c in enumerate(every1["step_cost"], start=1) if c > ceiling)
    assert spiky["diverged"] is None and spiky["train_cost"] == every1["train_cost"]
    assert (spiky["above_ceiling"]["epoch"], spiky["above_ceiling"]["step"]) == (1, passed)
    assert spiky["above_ceiling"]["cost"] == every1["step_cost"][passed - 1]
    # through the driver: every grid point's result is written, the diverged ones too
    written = driver.run_panel(spec, InlineExecutor(), tmp_path)
    recs = {json.loads(p.read_text())["optimizer"]: json.loads(p.read_text()) for p in written}
    assert set(recs) == {huge, CORRECTED}
    assert recs[huge]["diverged"]["epoch"] == 1 and recs[CORRECTED]["diverged"] is None
    assert recs[huge]["tuning"]["tuned"] is False and recs[huge]["hyper"] == {"lr": 0.1}
    assert set(store.load_results(spec, tmp_path)) == {(huge, 0), (CORRECTED, 0)}


def test_elbo_is_evaluated_at_the_stated_epochs_on_the_stated_set():
    spec = tiny_grid(epochs=4, eval_every=2)
    run = train_run(spec, CORRECTED, {"lr": 1e-3}, 0)
    assert run["full_cost_epochs"] == [0, 1, 2, 4] and all(math.isfinite(c)
                                                           for c in run["full_cost"])
    assert run["full_cost"][-1] < run["full_cost"][0]
    rows = grid.eval_indices(spec, 300)
    assert len(rows) == 100 == len(set(rows)) and list(rows) == sorted(rows)
    assert list(grid.eval_indices(spec, 300)) == list(rows)
    assert list(grid.eval_indices(dataclasses.replace(spec, eval_n=None), 300)) == \
        list(range(300))
    # the value, by the Bernoulli and Gaussian formulas, with the documented noise
    x, _ = runner.load_data(spec.data)
    model = runner.build_model(spec, spec.optimizer(CORRECTED),
                               runner.generators(spec, 0, CORRECTED)["init"])
    noise = np.random.default_rng(np.random.SeedSequence(spec.eval_seed).spawn(2)[1])
    xe = x[rows].astype(np.float64)
    mu, logvar = (a.astype(np.float64) for a in model.encode(x[rows]))
    mu, logvar = mu.copy(), logvar.copy()
    total = 0.0
    for _ in range(spec.eval_samples):
        z = mu + np.exp(logvar / 2) * noise.standard_normal(mu.shape)
        p = 1 / (1 + np.exp(-model.decode(z.astype(np.float32)).astype(np.float64)))
        ll = np.sum(xe * np.log(p) + (1 - xe) * np.log1p(-p), axis=1)
        kl = 0.5 * np.sum(np.exp(logvar) + mu**2 - 1 - logvar, axis=1)
        total += np.sum(kl - ll)
    want = total / (len(rows) * spec.eval_samples)
    assert grid.elbo_cost(spec, model, x) == pytest.approx(want, rel=1e-6)
    assert run["full_cost"][0] == grid.elbo_cost(spec, model, x)  # deterministic
    # evaluating more often does not touch the run's generators
    other = train_run(dataclasses.replace(spec, eval_every=1), CORRECTED, {"lr": 1e-3}, 0)
    assert other["train_cost"] == run["train_cost"]


def test_every_grid_point_starts_from_the_seeds_one_initialisation():
    spec = tiny_grid("adam-b1_0-b2_0.99-lr_1e-5", UNCORRECTED, "adam-b1_0.9-b2_0.999-lr_1e-1")
    params = []
    for o in spec.optimizers:
        gens = runner.generators(spec, 0, o.name)
        params.append(runner.build_model(spec, o, gens["init"]).params)
        assert gens["order"].permutation(5).tolist() == \
            runner.generators(spec, 0, CORRECTED)["order"].permutation(5).tolist()
    for p in params[1:]:
        assert all(np.array_equal(p[k], params[0][k]) for k in p)
    runs = [train_run(spec, o.name, lr_of(spec, o.name), 0, epochs=1) for o in spec.optimizers]
    assert len({r["full_cost"][0] for r in runs}) == 1  # the same model at epoch 0
    assert len({r["train_cost"][0] for r in runs}) == 3  # and different optimizers


def test_resume_is_bit_for_bit(tmp_path):
    spec = tiny_grid(step_log_epochs=2)
    whole = train_run(spec, UNCORRECTED, {"lr": 1e-3}, 0)

    def stop(epoch, step):
        if (epoch, step) == (2, 5):
            raise Interrupt

    ck = tmp_path / "ck"
    with pytest.raises(Interrupt):
        train_run(spec, UNCORRECTED, {"lr": 1e-3}, 0, checkpoint_dir=ck, on_step=stop,
                  checkpoint_every_s=0)
    resumed = train_run(spec, UNCORRECTED, {"lr": 1e-3}, 0, checkpoint_dir=ck, resume=True,
                        checkpoint_every_s=0)
    assert resumed["resumed_at_epochs"] == [1]
    for key in ("train_cost", "full_cost", "full_cost_epochs", "step_cost", "step_cost_steps",
                "diverged"):
        assert resumed[key] == whole[key], key


# ----------------------------------------------------------------------------- results


@pytest.fixture
def grid_panel(monkeypatch):
    monkeypatch.setitem(specs.PANELS, "tinygrid", lambda preset: dataclasses.replace(
        tiny_grid(), preset=preset))
    monkeypatch.setattr(ecli, "PANEL_NAMES", ecli.PANEL_NAMES + ("tinygrid",))
    return tiny_grid()


def test_list_status_and_validation_accept_grid_results(tmp_path, capsys, grid_panel):
    spec = grid_panel
    written = driver.run_panel(spec, InlineExecutor(), tmp_path)
    assert len(written) == 2 and not list(tmp_path.glob("tinygrid/quick/tune-*"))
    assert all(store.result_state(p, spec)[0] == "fresh" for p in written)
    assert main(["list", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("tinygrid    quick"))
    assert row.split()[5:9] == ["-", "2/2", "0", "0"] and row.endswith("2 grid points")
    assert "fig4        paper" in out and "INVALID" not in out
    assert main(["status", "--results", str(tmp_path)]) == 0
    assert "tinygrid quick: 2/2 results, 0 stale, 0 invalid, no tuning" in capsys.readouterr().out
    # `run` skips what is fresh and redoes a result whose step log was edited
    assert driver.run_panel(spec, InlineExecutor(), tmp_path) == []
    rec = json.loads(written[0].read_text())
    rec["step_cost_steps"] = rec["step_cost_steps"][:-1]
    rec["step_cost"] = rec["step_cost"][:-1]
    written[0].write_text(json.dumps(rec))
    state, why = store.result_state(written[0], spec)
    assert state == "invalid" and "step_cost_steps is [3, 6], expected [3, 6, 9]" in why
    assert main(["list", "--results", str(tmp_path)]) == 0
    assert f"INVALID {written[0]} is not a valid result: step_cost_steps" in \
        capsys.readouterr().out
    assert driver.run_panel(spec, InlineExecutor(), tmp_path) == [written[0]]


def test_quick_preset_through_the_cli_on_real_mnist(tmp_path, capsys):
    from adamlab.data import MissingDataError, load_mnist
    try:
        load_mnist()
    except (MissingDataError, OSError) as e:
        pytest.skip(f"MNIST not available: {e}")
    assert main(["run", "fig4", "--preset", "quick", "--optimizer", CORRECTED, "--optimizer",
                 UNCORRECTED, "--workers", "1", "--results", str(tmp_path)]) == 0
    spec = specs.get_spec("fig4", "quick")
    recs = store.load_results(spec, tmp_path, optimizers=[CORRECTED, UNCORRECTED])
    for rec in recs.values():
        assert rec["n_train"] == 2000 and rec["steps_per_epoch"] == 16
        assert rec["step_cost_steps"] == [4, 8, 12, 16] and rec["full_cost_epochs"] == [0, 1, 2]
        assert 600 < rec["full_cost"][0] < 700 and rec["full_cost"][-1] < 300
        assert rec["spec"]["data"]["dataset"] == "mnist-binary"
        assert "git_commit" in rec["provenance"] and rec["machine"]["cpu_model"]
    assert main(["list", "--results", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("fig4        quick"))
    assert row.split()[5:9] == ["-", "2/60", "0", "0"]


# ----------------------------------------------------------------------------- the seeds preset


def test_the_seeds_preset_is_the_paper_grid_on_seeds_1_and_2_over_10_epochs(tmp_path, capsys):
    paper, more = specs.get_spec("fig4", "paper"), specs.get_spec("fig4", "seeds")
    assert more.seeds == (1, 2) and more.epochs == 10 and more.eval_epochs() == (0, 1, 10)
    assert dataclasses.replace(more, preset="paper", epochs=100, seeds=(0,)) == paper
    assert more.spec_hash() != paper.spec_hash()
    assert "seeds" in specs.presets_of("fig4") and "seeds" not in specs.presets_of("fig2a-mlp")
    with pytest.raises(specs.SpecError, match="its presets are quick, paper, horizon"):
        specs.get_spec("fig2a-mlp", "seeds")
    assert main(["list", "--results", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("fig4        seeds"))
    assert row.split()[3:6] == ["10", "2", "-"] and "0/120" in row


# ----------------------------------------------------------------------------- reading a grid


def test_point_of_reads_the_grid_entry():
    spec = specs.get_spec("fig4", "paper")
    assert grid.point_of(spec, "nobc-b1_0.9-b2_0.9999-lr_1e-3") == (False, 0.9, 0.9999, 1e-3)
    p = grid.point_of(spec, "adam-b1_0-b2_0.99-lr_1e-5")
    assert p.corrected and p.beta1 == 0.0 and p.beta2 == 0.99 and p.lr == pytest.approx(1e-5)
    with pytest.raises(KeyError):
        grid.point_of(spec, "adam-b1_0.5-b2_0.99-lr_1e-5")


def test_load_grid_reads_the_points_that_have_run_and_names_the_rest(tmp_path):
    spec = tiny_grid(CORRECTED, UNCORRECTED, "adam-b1_0-b2_0.99-lr_1e-3")
    driver.run_panel(spec, InlineExecutor(), tmp_path, optimizers=[UNCORRECTED])
    recs, missing = grid.load_grid(spec, tmp_path)
    assert list(recs) == [(UNCORRECTED, 0)]
    assert missing == [CORRECTED, "adam-b1_0-b2_0.99-lr_1e-3"]
    # a stale file is refused, not skipped
    with pytest.raises(store.StaleResultError, match="stale results"):
        grid.load_grid(dataclasses.replace(spec, eval_samples=3), tmp_path)
    rec = recs[UNCORRECTED, 0]
    assert grid.loss_at(rec, 3) == rec["full_cost"][-1]
    with pytest.raises(ValueError, match="not evaluated after epoch 5"):
        grid.loss_at(rec, 5)
    assert grid.loss_at({**rec, "diverged": {"epoch": 3, "step": 4, "reason": "x"}}, 3) == \
        math.inf
    assert grid.loss_at({**rec, "diverged": {"epoch": 3, "step": 4, "reason": "x"}}, 1) == \
        rec["full_cost"][1]


@pytest.mark.parametrize("adam, other, relation", [
    ([90.0], [100.0], "better"),                       # 10 % lower on the one seed
    ([110.0], [100.0], "worse"),
    ([101.0], [100.0], "close (one seed)"),            # within 3 %: one seed cannot decide
    ([101.0, 100.5], [100.0, 100.0], "close (two seeds)"),
    ([101.0, 101.2, 100.9], [100.0, 100.0, 100.0], "worse"),   # interval above 0
    ([99.0, 99.2, 98.9], [100.0, 100.0, 100.0], "better"),
    ([101.0, 99.0, 100.5], [100.0, 100.0, 100.0], "equal"),    # interval holds 0
    ([90.0, 104.0, 95.0], [100.0, 100.0, 100.0], "mixed"),     # far on seed 0, sign flips
    ([math.inf], [100.0], "worse (diverged)"),
    ([100.0], [math.inf], "better (the other diverged)"),
    ([math.inf], [math.inf], "both diverged"),
])
def test_point_relation(adam, other, relation):
    out = grid.point_relation(adam, other)
    assert out["relation"] == relation and out["n"] == len(adam)
    assert (relation in grid.HOLDS) == (relation in ("better", "equal",
                                                    "better (the other diverged)",
                                                    "both diverged"))
    if relation in ("worse", "better", "equal") and len(adam) == 3 and relation != "mixed":
        assert out["lo"] < out["hi"]
        assert (out["lo"] > 0) == (relation == "worse") and (out["hi"] < 0) == \
            (relation == "better")


def test_point_relation_refuses_mismatched_or_missing_losses():
    with pytest.raises(ValueError, match="one loss"):
        grid.point_relation([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one loss"):
        grid.point_relation([math.nan], [1.0])
