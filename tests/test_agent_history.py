"""The acting agent's history policy (--agent-history): what the chat keeps, what it folds."""

from __future__ import annotations

import pytest

from alma_tui.agent.loop import HistoryPolicy, parse_history_policy, run_episode
from alma_tui.agent.prompt import ADMISSIBLE_HEADING, HISTORY_HEADING, parse_history
from alma_tui.cli import main
from alma_tui.domains.household import HouseholdDomain
from alma_tui.offline.policy import choose_action


def _chats(history: str) -> list[list[dict]]:
    """Every chat the agent was sent in one long failing household episode (the offline policy acts)."""
    d = HouseholdDomain()
    task = d.tasks("train", 3, 1)[0]
    seen: list[list[dict]] = []

    def complete(messages: list[dict]) -> str:
        seen.append([dict(m) for m in messages])
        return choose_action(messages, 0) if len(seen) % 3 else "dance wildly"  # some unmatched answers

    run_episode(d.make_env(task), task, d, "", complete, history=history)
    return seen


def test_summary_keeps_the_last_exchanges_and_folds_the_rest_in_order() -> None:
    chats = _chats("summary:2")
    assert len(chats) > 6
    for i, chat in enumerate(chats):
        assert chat[0]["role"] == "system" and chat[1] == chats[0][1]  # the stable head never changes
        verbatim = [m for m in chat[2:] if m["role"] == "assistant"]
        assert len(verbatim) == min(i, 2)
        folded = [parse_history(m["content"]) for m in chat if m["role"] == "user"]
        folded = [f for f in folded if f is not None]
        assert len(folded) == (1 if i > 2 else 0)
        if folded:  # every older step, oldest first, as "action -> first line of what it produced"
            steps = folded[0]
            assert len(steps) == i - 2
            assert all(ADMISSIBLE_HEADING not in obs and "\n" not in obs for _, obs in steps)
    answers = [c[-2]["content"] for c in chats[1:]]  # the answer to each step, in order
    summary = next(parse_history(m["content"]) for m in chats[-1] if m["content"].startswith(HISTORY_HEADING))
    assert summary is not None and [a for a, _ in summary] == answers[: len(summary)]
    assert "dance wildly" in [a for a, _ in summary]  # an unmatched answer is folded as it was given
    # far fewer characters than the plain window sends for the same episode
    window = _chats("20")
    assert sum(len(str(m)) for c in chats for m in c) < 0.7 * sum(len(str(m)) for c in window for m in c)


def test_the_offline_agent_acts_the_same_on_the_summary_as_on_the_whole_history() -> None:
    """What the offline policy reconstructs from the chat (where it is, what it holds, which
    places it checked and what it saw there) survives folding: its steps equal those it takes
    when shown every exchange verbatim."""
    d = HouseholdDomain()
    same = 0
    tasks = d.tasks("train", 5, 12)
    for i, task in enumerate(tasks):
        runs = []
        for history in ("1000", "summary:1"):
            ep, _ = run_episode(d.make_env(task), task, d, "", lambda m, s=i: choose_action(m, s), history=history)
            runs.append([s.action for s in ep.steps])
        same += runs[0] == runs[1]
    assert same >= len(tasks) - 2, f"only {same} of {len(tasks)} episodes unchanged"


@pytest.mark.parametrize(
    ("text", "policy"),
    [("20", HistoryPolicy(20, False)), ("summary", HistoryPolicy(2, True)), ("summary:5", HistoryPolicy(5, True))],
)
def test_history_policy_values(text: str, policy: HistoryPolicy) -> None:
    assert parse_history_policy(text) == policy


@pytest.mark.parametrize("bad", ["0", "summary:0", "all", "summary:x", "-3"])
def test_a_bad_history_policy_is_one_usage_line(bad: str, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--headless", "--repo", str(tmp_path / "r"), "--agent-history", bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("alma-tui run: error: argument --agent-history") and "'summary'" in err[-1]
