"""``python -m nimbleops.bench``: its options, its JSON, its spread and noise warnings. Times are
not asserted (speed is measured by the benchmark itself, never by a unit test)."""
from __future__ import annotations

import json

import pytest

from nimbleops import bench


def test_tour_of_one_family_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["--only", "bellman", "--rounds", "2", "--json", str(out)])
    table = capsys.readouterr().out
    assert "| (b) 1024 MDPs S=16 A=4 float64: one sweep" in table  # (a noisy run appends a warning mark)
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["family"] == "bellman" and len(row["seconds_per_round"]) == 2
    (peer,) = row["peers"]  # the tour: the family's main peer only
    assert peer["name"] == "numpy einsum" and peer["speedup"] > 0 and peer["speedup_iqr"] >= 0


def test_every_family_has_its_tour_workload():
    pytest.importorskip("torch")
    chosen = bench.tour(list(bench.FAMILIES))
    assert [w.family for w in chosen] == list(bench.FAMILIES)
    assert all(len(w.peers) <= 1 for w in chosen)


def test_unknown_family_and_too_few_rounds_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--only", "bellmann"])
    assert "unknown family bellmann" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--rounds", "1"])
    assert "--rounds: expected at least 2" in capsys.readouterr().err


def test_noise_warnings():
    steady = bench.Timing(1e-4, [1e-4, 1.01e-4, 0.99e-4], [1e-4] * 30)
    assert not steady.quantised and steady.iqr < 2e-6
    sliced = bench.Timing(4e-3, [4e-3, 8e-3, 4e-3], [4e-3] * 20 + [8e-3] * 10 + [4.3e-3] * 2)
    assert sliced.quantised  # a loaded machine's time slices: whole milliseconds
    w = bench.Workload("gae", "w", lambda: None)
    assert bench.Row(w, steady, [("p", steady, 1.0, 0.01)]).warnings == []
    warned = bench.Row(w, steady, [("p", sliced, 40.0, 20.0)]).warnings
    assert any("timer-quantised" in x for x in warned) and any("spread" in x for x in warned)


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    t = bench.Timing(1e-3, [1e-3, 1e-3], [1e-3] * 4)
    rows = [bench.Row(bench.Workload("gae", f"workload {i}", lambda: None), t, [("peer", t, 2.0 ** i, 0.1)])
            for i in range(-1, 3)]
    bench.plot(rows, str(tmp_path / "speedups.png"))
    assert (tmp_path / "speedups.png").stat().st_size > 1000


def test_a_failing_peer_is_reported_not_fatal():
    def broken():
        raise RuntimeError("peer exploded\nsecond line")

    w = bench.Workload("gae", "w", lambda: None, {"fine": lambda: None, "broken": broken})
    row = bench.run_workload(w, min_time=0.01, rounds=2)
    assert [p[0] for p in row.peers] == ["fine"]
    assert row.failed == [("broken", "RuntimeError: peer exploded")]
    assert row.as_dict()["failed_peers"] == [{"name": "broken", "error": "RuntimeError: peer exploded"}]
