"""The default path after the search: shared by the workers, stopped at once, resumed where it stopped (issue 12)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from helpers import REPO_ROOT, TINY_ARGS, cli, demo_data, env, tiny_space, wait_until
from mat_interp_core import optuna_rdb, projects, refine, synthetic, workers


def _refine_attrs(url: str, name: str) -> dict[int, dict]:
    return {t.number: t.user_attrs for t in projects.open_project(url, name).study().trials}


def test_sigterm_during_the_refinement_stops_within_seconds_keeps_what_is_done_and_resumes(mariadb_url, tmp_path):
    url, name = mariadb_url, "stopme"
    csv = tmp_path / "demo.csv"
    synthetic.demo_frame().to_csv(csv, index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mat_interp_core", "train", name, "--csv", str(csv), "--x1", "T (K)", "--x2", "H (Oe)",
         "--y", "moment (emu)", "--trials", "3", "--workers", "2", "--database", url, *TINY_ARGS,
         "--min-resource", "1000", "--keep-models", "3", "--refine-epochs", "2000", "--seed", "0"],  # no pruning
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env(), start_new_session=True)
    try:
        # one configuration refined and another in training (both workers took one: they share the refinement)
        def one_done_one_running() -> bool:
            try:
                return refine.refine_status(projects.open_project(url, name))[0] >= 1 and refine.refine_progress(projects.open_project(url, name))["running"] >= 1
            except projects.ProjectError:  # not created yet
                return False

        wait_until(one_done_one_running, 600, "a refined model while another refines")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert stopped_in < 10.0, f"the CLI and its workers took {stopped_in:.1f} s to stop"  # 2 s on an idle machine
    assert f"continue with: mat-interp train {name} --more 0" in err
    assert "oneDNN" not in out + err and "tensorflow" not in (out + err).lower()  # TF's start-up lines stay out
    attrs = _refine_attrs(url, name)
    assert not any("refining" in a for a in attrs.values()), "a stopped worker left its claim"
    before = {n: a["refined_s"] for n, a in attrs.items() if "refined" in a}
    done, total = refine.refine_status(projects.open_project(url, name))
    assert 1 <= len(before) == done < total == 3

    res = cli("train", name, "--more", "0", "--workers", "2", "--database", url, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "kept 3 models" in res.stdout, res.stdout
    assert refine.refine_status(projects.open_project(url, name)) == (3, 3)
    after = _refine_attrs(url, name)
    assert {n: after[n]["refined_s"] for n in before} == before  # what was finished was not trained again


def test_a_claimed_refinement_is_skipped_by_others_until_its_claim_goes_stale(mariadb_url) -> None:
    url, name = mariadb_url, "claims"
    projects.create_project(url, name, demo_data(), n_trials=2,
                            space=tiny_space(epochs=10, min_resource=1000, keep_models=2, seed=0))
    assert workers.run_worker(url, name, exit_when_idle=True, threads=1, poll_seconds=0.1) == 2
    trials = projects.open_project(url, name).study().trials
    settings = refine.refine_settings(20, 2)  # not the project's defaults (1 seed)
    assert refine.claim(url, trials[0]._trial_id, "a:1", settings, 0, 0)
    assert not refine.claim(url, trials[0]._trial_id, "b:2", settings, 0, 0)  # held by a live process
    assert refine.claim(url, trials[0]._trial_id, "a:1", settings, 5, 10)  # its own refresh
    progress = refine.refine_progress(projects.open_project(url, name))
    assert progress["running"] == 0  # the project's default settings are not the ones claimed
    # another process refines the rest and leaves the claimed one alone
    assert refine.refine_project(projects.open_project(url, name), epochs=20, seeds=1) == [trials[1].number]
    # a claim not refreshed for CLAIM_STALE_SECONDS belongs to a dead process: taken over
    table = optuna_rdb.user_attr_table()
    from mat_interp_core import storage

    with storage.get_engine(url).begin() as conn:
        stale = json.dumps({"worker": "a:1", "settings": settings, "at": time.time() - 2 * refine.CLAIM_STALE_SECONDS})
        conn.execute(table.update().where(table.c.trial_id == trials[0]._trial_id, table.c.key == "refining")
                     .values(value_json=stale))
    assert refine.refine_project(projects.open_project(url, name), epochs=20, seeds=1) == [trials[0].number]
    assert "refining" not in _refine_attrs(url, name)[trials[0].number]  # released when done


_CLAIMING = r"""
import sys
from mat_interp_core import refine
url, trial_id, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
won = 0
for i in range(200):
    if refine.claim(url, trial_id, me, {"folds": 0}, i, 200, key="racing"):
        won += 1
        refine.release(url, trial_id, me, key="racing")
print(won)
"""


def test_processes_claiming_one_piece_of_work_at_once_do_not_crash_on_deadlocks(mariadb_url) -> None:
    """Claim and release from three processes at once: InnoDB rolls some of these transactions back as
    deadlocks (a worker once died of it in CI); they are retried, never raised."""
    url, name = mariadb_url, "race"
    projects.create_project(url, name, demo_data(), n_trials=1,
                            space=tiny_space(epochs=5, min_resource=1000, keep_models=1, seed=0))
    assert workers.run_worker(url, name, exit_when_idle=True, threads=1, poll_seconds=0.1) == 1
    trial_id = projects.open_project(url, name).study().trials[0]._trial_id
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMING, url, str(trial_id), f"p:{i}"], cwd=REPO_ROOT,
                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(err[-2000:] for _, err in outs)
    assert sum(int(out) for out, _ in outs) > 0
    assert "racing" not in _refine_attrs(url, name)[0]  # every winner released its claim


def test_the_refinement_budget_counts_optimizer_steps() -> None:
    assert refine.refine_epochs(1000, 808, 64) == 1000  # Section 3.1: 13 steps an epoch, every epoch kept
    assert refine.refine_epochs(1000, 29977, 256) == 136  # ARPES: 118 steps an epoch, 16 000 steps in all
    assert refine.refine_epochs(1000, 29977, 1024) == 534
    assert refine.refine_epochs(10, 100, 1000) == 80  # one step an epoch: at least 8 steps an epoch's worth
    assert refine.refine_epochs(500, 279, 256) == 2000  # 2 steps an epoch: 4000 steps, not 1000
    assert refine.refine_epochs(500, 808, 128) == 572  # 7 steps an epoch: 4000 steps
