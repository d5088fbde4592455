"""The horizon protocol (issue #18): successive halving at the claim's horizon, the window
criterion, the schedule as a searched axis, the runner-up and its runs, widening at the last rung,
resumed searches, and the ``horizon`` preset beside the unchanged ``paper`` ones.

Everything runs on a tiny synthetic problem (300 examples, 20 features, 3 classes: 3 steps per
epoch) and writes only to pytest's temporary folders.
"""

from __future__ import annotations

import json
import math

import pytest

from adamlab.cli import main
from adamlab.experiments import driver, results as store, specs, tuning
from adamlab.experiments.executors import InlineExecutor
from adamlab.experiments.runner import train_run
from adamlab.experiments.specs import (ADAM, NESTEROV_MU, DataSpec, Grid, ModelSpec,
                                       OptimizerSpec, PanelSpec, Protocol, TuneSpec)


def tiny(protocol=Protocol(rungs=(1, 2, 4), window=2), lr=Grid(-6, -1), **changes) -> PanelSpec:
    base = dict(
        panel="tiny", preset="horizon", title="tiny synthetic problem",
        data=DataSpec("synthetic", n_train=300, n_features=20, n_classes=3, subset_seed=1),
        model=ModelSpec("logreg", sizes=(20, 3), weight_decay=1e-3),
        optimizers=(OptimizerSpec("adam", "Adam", lr, fixed=ADAM),),
        epochs=4, tune=TuneSpec(budget_epochs=4), seeds=(0, 1), protocol=protocol)
    base.update(changes)
    return PanelSpec(**base)


def key(hyper: dict) -> str:
    return json.dumps(hyper, sort_keys=True)


def by_rung(rec: dict, r: int) -> dict:
    """``{hyper: criterion}`` of the points that ran rung ``r`` (0-based)."""
    epochs = rec["rungs"][r]["epochs"]
    return {key(p["hyper"]): c["criterion"] for p in rec["points"] for c in p["rungs"]
            if c["epochs"] == epochs}


def score(c):
    return math.inf if c is None else c


# ----------------------------------------------------------------------------- the search


def test_rungs_promote_the_best_fraction_and_at_least_two_reach_the_horizon():
    spec = tiny()
    rec = tuning.tune_optimizer(spec, "adam", InlineExecutor())
    assert [r["epochs"] for r in rec["rungs"]] == [1, 2, 4]
    # 6 step sizes x 2 schedules; a third of 12 (4) go on, then max(2, ceil(4/3)) = 2
    assert [r["points"] for r in rec["rungs"][:2]] == [12, 4]
    assert len(rec["rungs"][0]["kept"]) == 4 and len(rec["rungs"][1]["kept"]) == 2
    for r in (0, 1):
        crit = by_rung(rec, r)
        best = sorted(crit, key=lambda h: score(crit[h]))[:len(rec["rungs"][r]["kept"])]
        assert sorted(map(key, rec["rungs"][r]["kept"])) == sorted(best)
        # the kept points, and only they, ran the next rung (besides values widened there)
        widened = {v for w in rec["widenings"] for v in w["added"]}
        nxt = {h for h in by_rung(rec, r + 1) if json.loads(h)["lr"] not in widened}
        assert nxt == set(map(key, rec["rungs"][r]["kept"]))
    final = by_rung(rec, 2)
    assert len(final) >= 2 and rec["rungs"][2]["points"] == len(final)
    ranked = sorted(final, key=lambda h: score(final[h]))
    assert key(rec["chosen"]) == ranked[0] and key(rec["runner_up"]) == ranked[1]
    assert rec["chosen_criterion"] == final[ranked[0]]
    assert rec["runner_up_criterion"] == final[ranked[1]]
    assert rec["protocol"] == spec.to_dict()["protocol"] and rec["budget_epochs"] == 4


def test_the_criterion_is_the_window_mean_at_each_rung_and_continued_runs_equal_fresh_ones():
    spec = tiny()
    rec = tuning.tune_optimizer(spec, "adam", InlineExecutor())
    for p in rec["points"]:
        for r in p["rungs"]:
            b = r["epochs"]
            want = sum(p["train_cost"][max(0, b - 2):b]) / min(2, b)
            assert r["criterion"] == pytest.approx(want, rel=1e-12)
    assert tuning.window_mean([4.0, 3.0, 2.0, 1.0], 3, 2) == 2.5
    assert tuning.window_mean([4.0, 3.0], 3, 2) is None  # did not reach the rung (diverged)
    assert tuning.window_mean([4.0], 1, 3) == 4.0
    # the chosen point reached the horizon; a fresh 4-epoch run gives its curve bit for bit
    chosen = next(p for p in rec["points"] if p["hyper"] == rec["chosen"])
    fresh = train_run(spec, "adam", rec["chosen"], 0, epochs=4)
    assert fresh["train_cost"] == chosen["train_cost"]


def test_continued_rungs_resume_from_checkpoints(tmp_path):
    spec = tiny()
    partial = tuning.partial_path(tmp_path, spec, "adam")
    rec = tuning.tune_optimizer(spec, "adam", InlineExecutor(), partial=partial)
    promoted = [p for p in rec["points"] if len(p["rungs"]) == 3 and p["epochs"] == 4
                and len(p["resumed_at_epochs"]) == 2]
    assert promoted, "a point that ran every rung continued from its checkpoints"
    assert promoted[0]["resumed_at_epochs"] == [1, 2]
    assert not partial.with_suffix(".runs").exists()  # the search's checkpoints are removed
    bare = tuning.tune_optimizer(spec, "adam", InlineExecutor())  # no checkpoints: reruns
    assert [p["train_cost"] for p in bare["points"]] == [p["train_cost"] for p in rec["points"]]
    assert bare["chosen"] == rec["chosen"] and bare["runner_up"] == rec["runner_up"]


def test_the_schedule_is_searched_and_the_chosen_hyper_parameters_carry_it():
    spec = tiny()
    rec = tuning.tune_optimizer(spec, "adam", InlineExecutor())
    assert {p["hyper"]["schedule"] for p in rec["points"]} == {"constant", "inverse_sqrt"}
    assert rec["chosen"]["schedule"] in ("constant", "inverse_sqrt")
    assert rec["schedules"] == ["constant", "inverse_sqrt"]
    h = {"lr": 0.01}
    const = train_run(spec, "adam", {**h, "schedule": "constant"}, 0, epochs=2)
    decay = train_run(spec, "adam", {**h, "schedule": "inverse_sqrt"}, 0, epochs=2)
    assert const["train_cost"] != decay["train_cost"]
    assert (const["schedule"], decay["schedule"]) == ("constant", "inverse_sqrt")
    # the optimizer's own schedule applies where the hyper-parameters do not carry one
    own = train_run(spec, "adam", h, 0, epochs=2)
    assert own["train_cost"] == const["train_cost"] and own["schedule"] == "constant"
    one = tiny(protocol=Protocol(rungs=(2,), schedules=()))
    rec1 = tuning.tune_optimizer(one, "adam", InlineExecutor())
    assert all("schedule" not in p["hyper"] for p in rec1["points"])


def test_a_winner_on_an_edge_at_the_last_rung_is_widened():
    # step sizes 1e-4 .. 1e-3 are all too small for 4 epochs: the best is on the high edge
    spec = tiny(lr=Grid(-8, -6))
    rec = tuning.tune_optimizer(spec, "adam", InlineExecutor())
    assert rec["widenings"] and rec["widenings"][0]["axis"] == "lr"
    assert rec["widenings"][0]["side"] == "high"
    assert rec["widenings"][0]["schedule"] in ("constant", "inverse_sqrt")
    grid = rec["final_grid"]["lr"]
    assert len(grid) > 3
    if not rec["flagged"]:  # a grid point on each side of the choice
        i = grid.index(rec["chosen"]["lr"])
        assert 0 < i < len(grid) - 1
    # the widened values ran the last rung only, at the winner's schedule
    widened = {v for w in rec["widenings"] for v in w["added"]}
    for p in rec["points"]:
        if p["hyper"]["lr"] in widened:
            assert [r["epochs"] for r in p["rungs"]] == [4]


def test_an_interrupted_search_resumes_from_its_rungs(tmp_path, monkeypatch):
    spec = tiny()
    whole = tuning.tune_optimizer(spec, "adam", InlineExecutor())
    partial = tuning.partial_path(tmp_path, spec, "adam")
    real, calls = tuning.rung_point, []

    def stop_at_14(*args):
        calls.append(args[3])
        if len(calls) == 14:  # in rung 2, after 12 points of rung 1 and one of rung 2
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(tuning, "rung_point", stop_at_14)
    with pytest.raises(KeyboardInterrupt):
        tuning.tune_optimizer(spec, "adam", InlineExecutor(), partial=partial)
    saved = tuning.partial_points(partial, spec)
    assert len(saved) == 13 and {k[3] for k in saved} == {0, 1}
    calls.clear()
    monkeypatch.setattr(tuning, "rung_point", real)
    again = []
    monkeypatch.setattr(tuning, "rung_point", lambda *a: again.append(a[3]) or real(*a))
    rec = tuning.tune_optimizer(spec, "adam", InlineExecutor(), partial=partial, resume=True)
    assert 1 not in again and again.count(2) == 3  # rung 1 not rerun; 3 points left in rung 2
    for k in ("chosen", "runner_up", "chosen_criterion", "runner_up_criterion", "rungs"):
        assert rec[k] == whole[k]
    other = tiny(protocol=Protocol(rungs=(1, 2, 4), window=3))
    with pytest.raises(tuning.CheckpointError, match="another experiment"):
        tuning.partial_points(partial, other)


# ----------------------------------------------------------------------------- runs and files


def _run(tmp_path, spec):
    with InlineExecutor() as ex:
        return driver.run_panel(spec, ex, tmp_path)


def test_the_runner_up_is_recorded_and_run_and_read_as_fresh(tmp_path):
    spec = tiny(protocol=Protocol(rungs=(1, 3), window=2, runner_up_seeds=(0,)), epochs=3,
                tune=TuneSpec(budget_epochs=3))
    written = _run(tmp_path, spec)
    names = sorted(p.name for p in written)
    assert names == ["adam-seed0-runnerup.json", "adam-seed0.json", "adam-seed1.json"]
    rec = store.load_tuning(tmp_path, spec, "adam", strict=True)
    up = json.loads((store.panel_dir(tmp_path, spec) / "adam-seed0-runnerup.json").read_text())
    assert up["role"] == "runner_up" and up["hyper"] == rec["runner_up"] != rec["chosen"]
    chosen = store.load_results(spec, tmp_path)
    assert sorted(chosen) == [("adam", 0), ("adam", 1)]
    assert all(r["role"] == "chosen" and r["hyper"] == rec["chosen"] for r in chosen.values())
    ups = store.load_results(spec, tmp_path, role="runner_up")
    assert list(ups) == [("adam", 0)] and ups[("adam", 0)]["hyper"] == rec["runner_up"]
    row = store.scan(tmp_path, [spec])[0]
    assert (row["fresh"], row["expected"], row["stale"]) == (3, 3, 0)
    assert (row["runner_up_fresh"], row["runner_up_expected"]) == (1, 1)
    # a second run skips every fresh result, the runner-up's included
    assert _run(tmp_path, spec) == []
    # a runner-up file made at another setting is stale, and rerun
    path = store.result_path(tmp_path, spec, "adam", 0, "runner_up")
    up["hyper"] = rec["chosen"]
    path.write_text(json.dumps(up))
    state, why = store.result_state(path, spec, store.setting_of(rec, "runner_up"))
    assert state == "stale" and "tuning record now chooses" in why
    assert [p.name for p in _run(tmp_path, spec)] == ["adam-seed0-runnerup.json"]
    # a runner-up file under the chosen run's name is invalid, naming the problem
    bad = store.result_path(tmp_path, spec, "adam", 1)
    bad.write_text(json.dumps({**up, "seed": 1}))
    assert "runner-up run of adam seed 1, not the one its name says" in \
        store.result_state(bad, spec)[1]


def test_old_paper_and_quick_spec_hashes_are_unchanged():
    """The presets made before the protocol keep their hashes: their committed results load."""
    pinned = {
        ("fig1-mnist", "quick"): "59c2e221ff845fa7cd04022c16c02902243379f3eb65b74de7119a3ec28e67b3",
        ("fig1-mnist", "paper"): "63b93c4f17c403eec18227c9c545c0f8456216b7fcac61f7de5621461176e1e6",
        ("fig1-imdb", "quick"): "c0aab1f582131349186b56ecf28a04c5e8fda60437daf34ecab7abd17fcd25c0",
        ("fig1-imdb", "paper"): "91494778ea58abc3e4871505510d7a60466d23da215e9f864ff5b18d290f31ff",
        ("fig2a-mlp", "quick"): "9d6798424e160f488cfaeed140417a037ff2749777607f23202115d98deff747",
        ("fig2a-mlp", "paper"): "b27a7a41f2c94dbabcb337373e24619a62017179de2431372116ce3fe2b56500",
        ("fig2a-decay", "quick"): "26e0f0da7896fe1d940409ac2cd968bb396d62e9c518bd8d4bdcbb87dcf8f5f5",
        ("fig2a-decay", "paper"): "7ba134684b1f3ac2915c7736b712f3b507abcae1811eb38a7348ff0a62d2ce2f",
    }
    for (panel, preset), h in pinned.items():
        spec = specs.get_spec(panel, preset)
        assert spec.spec_hash() == h, (panel, preset)
        assert "protocol" not in spec.to_dict()
    for panel in ("fig1-mnist", "fig1-imdb", "fig2a-mlp"):
        h = specs.get_spec(panel, "horizon")
        paper = specs.get_spec(panel, "paper")
        assert h.protocol is not None and h.spec_hash() not in pinned.values()
        assert (h.data, h.model, h.optimizers, h.epochs, h.seeds) == \
            (paper.data, paper.model, paper.optimizers, paper.epochs, paper.seeds)
        assert h.protocol.rungs[-1] == h.epochs and h.protocol.schedules == specs.SCHEDULES
        assert specs.spec_from_dict(json.loads(h.canonical_json())) == h
    assert specs.get_spec("fig1-mnist", "horizon").protocol.rungs == (45,)
    assert specs.get_spec("fig1-imdb", "horizon").protocol.rungs == (160,)
    assert specs.get_spec("fig2a-mlp", "horizon").runner_up_seeds() == (0,)
    assert specs.get_spec("fig1-mnist", "horizon").runner_up_seeds() == (0, 1, 2)
    with pytest.raises(specs.SpecError, match="its presets are quick, paper"):
        specs.get_spec("fig2a-decay", "horizon")


def test_protocol_fields_are_checked():
    with pytest.raises(ValueError, match="rungs must be increasing"):
        Protocol(rungs=(3, 2))
    with pytest.raises(ValueError, match="min_final at least 2"):
        Protocol(rungs=(3,), min_final=1)
    with pytest.raises(ValueError, match="unknown schedules"):
        Protocol(rungs=(3,), schedules=("cosine",))
    with pytest.raises(ValueError, match="longer than the tuning seed"):
        tiny(protocol=Protocol(rungs=(1, 9)))
    assert specs.survivors(12, Protocol(rungs=(1,))) == 4
    assert specs.survivors(4, Protocol(rungs=(1,))) == 2
    assert specs.survivors(1, Protocol(rungs=(1,))) == 1
    w = specs.workload(tiny())
    assert w["tune_epochs"] == 12 * 1 + 4 * 1 + 2 * 2 and w["runs"] == 4
    # seed 0's chosen and runner-up runs are the search's: only seed 1's are trained
    assert w["runs_from_search"] == 2 and w["run_epochs"] == 2 * 4
    fig2a = specs.workload(specs.get_spec("fig2a-mlp", "horizon"))
    assert fig2a["runs_from_search"] == 2 * 5 and fig2a["run_epochs"] == 5 * (20 + 20)


def test_cli_runs_the_horizon_preset_and_list_and_status_show_it_fresh(tmp_path, monkeypatch,
                                                                        capsys):
    """``adamlab run fig1-mnist --preset horizon`` on a tiny stand-in of the panel."""
    stand_in = tiny(panel="fig1-mnist", protocol=Protocol(rungs=(1, 3), window=2), epochs=3,
                    tune=TuneSpec(budget_epochs=3), seeds=(0, 1))
    monkeypatch.setitem(specs.EXTRA_PRESETS, "fig1-mnist", {"horizon": lambda preset: stand_in})
    res = tmp_path / "res"
    real, seen = tuning.as_completed, []

    def stop_at_13(*args):  # interrupted when the first point of rung 2 finishes
        for f in real(*args):
            seen.append(f)
            if len(seen) == 13:
                raise KeyboardInterrupt
            yield f

    monkeypatch.setattr(tuning, "as_completed", stop_at_13)
    argv = ["run", "fig1-mnist", "--preset", "horizon", "--workers", "1", "--results", str(res)]
    assert main(argv) == 130
    assert "12 finished grid points" in capsys.readouterr().err
    assert main(["status", "--results", str(res)]) == 0
    assert "fig1-mnist horizon adam: 12 grid points (rungs 1)" in capsys.readouterr().out
    monkeypatch.setattr(tuning, "as_completed", real)
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "rung 1/2" not in out and "rung 2/2" in out  # rung 1 was not rerun
    assert "runner-up" in out and "(runner-up)" in out
    folder = res / "fig1-mnist" / "horizon"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adam-seed0-runnerup.json", "adam-seed0.json", "adam-seed1-runnerup.json",
        "adam-seed1.json", "tune-adam.json"]
    assert main(["list", "--json", "--results", str(res)]) == 0
    rows = json.loads(capsys.readouterr().out)["panels"]
    row = next(r for r in rows if (r["panel"], r["preset"]) == ("fig1-mnist", "horizon"))
    assert (row["fresh"], row["expected"], row["stale"], row["invalid"]) == (4, 4, 0, [])
    assert (row["runner_up_fresh"], row["runner_up_expected"], row["tuned"]) == (2, 2, 1)
    assert main(["list", "--results", str(res)]) == 0
    out = capsys.readouterr().out
    assert "fig1-mnist  horizon" in out and "fig1-mnist horizon 2/2" in out
    assert main(["status", "--results", str(res)]) == 0
    assert "fig1-mnist horizon: 4/4 results (2/2 of the runner-up), 0 stale, 0 invalid, " \
        "1/1 tuned" in capsys.readouterr().out
    assert main(["run", "fig1-mnist", "--preset", "horizon", "--workers", "1",
                 "--results", str(res)]) == 0
    assert "(runner-up): a fresh result exists" in capsys.readouterr().out


def test_the_searchs_horizon_runs_are_written_as_results_not_trained_again(tmp_path):
    spec = tiny(protocol=Protocol(rungs=(1, 3), window=2, runner_up_seeds=(0,)), epochs=3,
                tune=TuneSpec(budget_epochs=3))
    said = []
    written = driver.run_panel(spec, InlineExecutor(), tmp_path, say=said.append)
    assert sorted(p.name for p in written) == ["adam-seed0-runnerup.json", "adam-seed0.json",
                                               "adam-seed1.json"]
    rec = store.load_tuning(tmp_path, spec, "adam", strict=True)
    for role, hyper in (("chosen", rec["chosen"]), ("runner_up", rec["runner_up"])):
        got = json.loads(store.result_path(tmp_path, spec, "adam", 0, role).read_text())
        assert got["from_search"] is True and got["role"] == role and got["hyper"] == hyper
        fresh = train_run(spec, "adam", hyper, 0)        # a new run, uninterrupted
        for k in ("train_cost", "full_cost", "full_cost_epochs", "diverged", "completed_epochs"):
            assert got[k] == fresh[k], k
        assert got["resumed_at_epochs"] == [1]           # continued from the first rung
    assert "from_search" not in json.loads(
        store.result_path(tmp_path, spec, "adam", 1).read_text())   # seed 1 was trained
    assert sum("the search ran it to the horizon" in line for line in said) == 2
    # the search's runs are spent once every result is written
    ck = store.checkpoints_dir(tmp_path)
    assert not tuning.last_rung_path(tuning.partial_path(ck, spec, "adam")).exists()
    assert store.scan(tmp_path, [spec])[0]["fresh"] == 3


def test_without_the_searchs_runs_the_horizon_runs_are_trained(tmp_path):
    spec = tiny(protocol=Protocol(rungs=(1, 3), window=2, runner_up_seeds=(0,)), epochs=3,
                tune=TuneSpec(budget_epochs=3))
    driver.tune_panel(spec, InlineExecutor(), tmp_path)
    ck = store.checkpoints_dir(tmp_path)
    last = tuning.last_rung_path(tuning.partial_path(ck, spec, "adam"))
    assert len(list(last.glob("*.json"))) >= 2       # every point of the last rung
    gone, *broken = sorted(last.glob("*.json"))     # one gone, the others unreadable
    gone.unlink()
    for f in broken:
        f.write_text("{")
    written = driver.run_panel(spec, InlineExecutor(), tmp_path)
    assert len(written) == 3
    assert not any("from_search" in json.loads(p.read_text()) for p in written)
    # and a search record of another spec is never taken
    other = tiny(protocol=Protocol(rungs=(1, 3), window=3, runner_up_seeds=(0,)), epochs=3,
                 tune=TuneSpec(budget_epochs=3))
    assert driver._last_rung_run(ck, other, "adam", 0, "chosen", {"lr": 1e-3}) is None
