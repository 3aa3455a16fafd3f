"""The ALFWorld domain: data discovery before any env exists, pools, and the real package's env
over tiny games written in ALFWorld's own format (tests/alfworld_games.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alma_tui.agent.loop import run_episode
from alma_tui.domains import list_domains
from alma_tui.domains.alfworld import ALFWorldDomain, clean_observation
from alma_tui.domains.alfworld_data import TASK_TYPES, data_problem, find_games, pool
from alma_tui.offline.alfworld_policy import AlfGoal, parse_alfworld_goal
from alma_tui.offline.provider import offline_answer
from tests.alfworld_games import STANDARD, GameSpec, write_dataset, write_game
from tests.test_cli import one_line_error, run_cli


def _act(messages: list[dict], seed: int) -> str:
    """The policy as the evaluator reaches it: through the offline provider, which unfolds the
    default ``--agent-history summary`` chat for it."""
    return offline_answer("offline/agent", messages, seed, ALFWorldDomain.offline_policy)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_dataset(tmp_path / "alfworld", per_split=2)
    monkeypatch.setenv("ALFWORLD_DATA", str(root))
    find_games.cache_clear()
    return root


# -- data discovery: before alfworld is imported or an env is built ---------------------------
def test_missing_data_says_what_to_run_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "nowhere"))
    line = data_problem()
    assert line is not None and "\n" not in line
    assert "alfworld-download" in line and str(tmp_path / "nowhere") in line


def test_folders_without_playable_games_are_not_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "alfworld"
    monkeypatch.setenv("ALFWORLD_DATA", str(root))
    for split in ("train", "valid_seen"):
        d = root / "json_2.1.1" / split
        write_game(d, GameSpec("pick_and_place_simple", "Mug", "CounterTop", 1, solvable=False), "unsolvable")
        write_game(d, GameSpec("pick_and_place_simple", "Mug", "CounterTop", 1), "movable")  # alfworld skips these
        (d / "trajonly" / "trial_T0").mkdir(parents=True)
        (d / "trajonly" / "trial_T0" / "traj_data.json").write_text(json.dumps({"task_type": "pick_two_obj_and_place"}))
    line = data_problem()
    assert line is not None and "no playable ALFWorld game" in line and "alfworld-download" in line
    write_game(root / "json_2.1.1" / "train", GameSpec("pick_and_place_simple", "Mug", "CounterTop", 1), "ok")
    assert "valid_seen" in (data_problem() or "")  # the held-out set is checked too
    write_game(root / "json_2.1.1" / "valid_seen", GameSpec("pick_and_place_simple", "Mug", "CounterTop", 1), "ok")
    assert data_problem() is None
    find_games.cache_clear()
    assert [g.path.parent.name for g in find_games(root / "json_2.1.1" / "train")] == [
        "pick_and_place_simple-Mug-None-CounterTop-ok"
    ]


def test_pools_are_seeded_stratified_by_task_type_and_disjoint(data: Path) -> None:
    domain = ALFWorldDomain()
    train, test = domain.tasks("train", 0), domain.tasks("test", 0)
    assert len(train) == len(test) == 12
    # every prefix of six holds each task type once: collection and deployment halves share types
    assert sorted(t.meta["task_type"] for t in train[:6]) == sorted(TASK_TYPES)
    assert {t.meta["set"] for t in train} == {"train"} and {t.meta["set"] for t in test} == {"valid_seen"}
    assert not {t.meta["game_dir"] for t in train} & {t.meta["game_dir"] for t in test}
    assert [t.task_id for t in domain.tasks("train", 0, 5)] == [t.task_id for t in train[:5]]
    assert [t.task_id for t in domain.tasks("train", 1)] != [t.task_id for t in train]
    ood = ALFWorldDomain(test_set="valid_unseen").tasks("test", 0)
    assert {t.meta["set"] for t in ood} == {"valid_unseen"}
    assert pool((), 0) == []


def test_cli_without_data_is_one_line_naming_the_download(tmp_path: Path) -> None:
    env = {"ALFWORLD_DATA": str(tmp_path / "empty")}
    listing = run_cli("domains", env=env)
    assert listing.returncode == 0
    (alf,) = [ln for ln in listing.stdout.splitlines() if ln.startswith("alfworld")]
    assert "alfworld-download" in alf and "ready" not in alf.split("[")[-1]
    for args in (["eval", "no_memory"], ["run", "--headless", "--repo", str(tmp_path / "r")]):
        line = one_line_error(run_cli(*args, "--domain", "alfworld", env=env))
        assert "alfworld-download" in line


def test_listing_reports_ready_once_the_data_is_there(data: Path) -> None:
    import importlib.util

    ready = {name: missing for name, _d, missing in list_domains()}
    if importlib.util.find_spec("alfworld") is None:
        assert "alfworld-download" in (ready["alfworld"] or "")
    else:
        assert ready["alfworld"] is None


def test_observation_cleaning_and_goal_parsing() -> None:
    raw = (
        "-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room. Looking quickly around you, "
        "you see a cabinet 1.\n\nYour task is to: heat some egg and put it in diningtable."
    )
    obs = clean_observation(raw)
    assert obs.startswith("You are in the middle") and "Welcome" not in obs and obs.endswith("diningtable.")
    cases = {
        "put a clean plate in countertop": AlfGoal("plate", "clean", "countertop"),
        "heat some egg and put it in diningtable": AlfGoal("egg", "heat", "diningtable"),
        "put a cool tomato in sidetable": AlfGoal("tomato", "cool", "sidetable"),
        "look at book under the desklamp": AlfGoal("book", "look", "desklamp"),
        "examine the book with the desklamp": AlfGoal("book", "look", "desklamp"),
        "find two pen and put them in diningtable": AlfGoal("pen", "", "diningtable", 2),
        "put two pens in diningtable": AlfGoal("pen", "", "diningtable", 2),
        "put some mug on countertop": AlfGoal("mug", "", "countertop"),
    }
    for text, goal in cases.items():
        assert parse_alfworld_goal(f"Your task is to: {text}.") == goal, text


# -- the real package's env ---------------------------------------------------------------------
def test_the_package_env_plays_every_task_type(data: Path) -> None:
    """Each of the six task types, loaded by alfworld's AlfredTWEnv and solved by the offline
    policy without memory within the 30-step limit; the goal and admissible actions are the env's."""
    pytest.importorskip("alfworld")
    domain = ALFWorldDomain()
    tasks = domain.tasks("test", 0, 6)
    solved = {}
    for task in tasks:
        env = domain.make_env(task)
        obs = env.reset()
        assert "Welcome" not in obs and f"Your task is to: {task.goal}" in obs
        acts = env.admissible_actions()
        assert "help" not in acts and any(a.startswith("go to ") for a in acts)
        nothing = env.step("dance wildly")
        assert nothing.observation == "Nothing happens." and not nothing.done
        episode, info = run_episode(env, task, domain, "", lambda m: _act(m, 0))
        assert episode.initial_observation == obs  # reset() is repeatable on the same env
        solved[task.meta["task_type"]] = (info["success"], info["steps"])
        assert env.score() == (1.0 if info["success"] else 0.0)
    assert all(ok for ok, _ in solved.values()), solved
    assert all(steps <= domain.max_steps for _, steps in solved.values())


def test_memory_points_the_policy_at_the_right_receptacle(data: Path) -> None:
    """A remembered sighting ("mug 1 in cabinet 2") sends the policy there first: fewer steps."""
    pytest.importorskip("alfworld")
    domain = ALFWorldDomain()
    task = next(t for t in domain.tasks("test", 0) if t.meta["task_type"] == "pick_and_place_simple")
    env = domain.make_env(task)
    env.reset()
    where = None
    for a in env.admissible_actions():
        if a.startswith("go to "):
            env.step(a)
            if not any(x.startswith("take mug") for x in env.admissible_actions()) and any(
                x.startswith("open ") for x in env.admissible_actions()
            ):
                env.step("open " + a[6:])
            if any(x.startswith("take mug") for x in env.admissible_actions()):
                where = a[6:]
                break
    assert where is not None
    blind = [run_episode(domain.make_env(task), task, domain, "", lambda m, s=s: _act(m, s))[1] for s in range(2)]
    memory = f"take mug 1 from {where} (x3)"
    told = [run_episode(domain.make_env(task), task, domain, memory, lambda m, s=s: _act(m, s))[1] for s in range(2)]
    assert all(i["success"] for i in told)
    assert sum(i["steps"] for i in told) < sum(i["steps"] for i in blind)


def test_standard_specs_cover_the_six_task_types() -> None:
    assert sorted({s.task_type for s in STANDARD}) == sorted(TASK_TYPES)
