"""The offline provider answers a design's own llm() prompts usefully, not with an action."""

from __future__ import annotations

from alma_tui.offline.provider import extractive_note, offline_answer

TRAJ = (
    "Summarise this episode.\n"
    "go to cabinet 3 -> You arrive at cabinet 3. On the cabinet 3, you see a mug 1.\n"
    "take mug 1 from cabinet 3 -> You pick up the mug 1 from the cabinet 3.\n"
    "heat mug 1 with microwave 1 -> You heat the mug 1 using the microwave 1.\n"
    "take mug 1 from cabinet 3 -> Nothing happens."
)


def test_design_prompt_gets_its_evidence_lines() -> None:
    note = offline_answer("offline/agent", [{"role": "user", "content": TRAJ}], seed=0)
    assert note.splitlines() == [
        "- On the cabinet 3, you see a mug 1",
        "- take mug 1 from cabinet 3",
        "- heat mug 1 with microwave 1 -> You heat the mug 1 using the microwave 1",
    ]  # in order, deduplicated; a tool use keeps what it produced


FAILED_EPISODE = (
    "The agent below FAILED its task. First reflect on why the trajectory failed.\n"
    "Goal: put a hot mug in shelf 1\n"
    "go to drawer 1 -> You arrive at drawer 1. In the drawer 1, you see a pen 1.\n"
    "go to cabinet 3 -> You arrive at cabinet 3. On the cabinet 3, you see a apple 1.\n"
    "heat apple 1 with microwave 1 -> The microwave 1 is broken: it does not heat.\n"
)


def test_a_failed_tool_use_is_noted_as_failed_not_as_the_way_to_do_it() -> None:
    from alma_tui.offline.policy import memory_votes

    note = extractive_note([{"role": "user", "content": FAILED_EPISODE}])
    assert "- heat apple 1 with microwave 1 -> The microwave 1 is broken: it does not heat" in note.splitlines()
    _, tools = memory_votes(note, "mug", "heat", "shelf 1", frozenset({"microwave 1", "drawer 1", "cabinet 3"}))
    assert tools["microwave 1"] < 0  # the acting agent tries it last


def test_asked_to_reflect_on_a_failure_it_states_where_the_object_was_not() -> None:
    note = extractive_note([{"role": "user", "content": FAILED_EPISODE}]).splitlines()
    assert note[0] == "- mug not found in drawer 1, cabinet 3"
    # a prompt that asks for no reflection (e.g. a cheatsheet update) gets the evidence only
    plain = FAILED_EPISODE.replace("First reflect on why the trajectory failed.", "Update the cheatsheet.")
    assert not any("not found" in line for line in extractive_note([{"role": "user", "content": plain}]).splitlines())


def test_prompt_without_evidence_is_summarised_deterministically() -> None:
    msgs = [{"role": "user", "content": "One. Two! Three? Four."}]
    assert extractive_note(msgs) == "One. Two! Three?" == extractive_note(msgs)


def test_acting_step_still_gets_an_action() -> None:
    step = "You are in the middle of a room.\n\nAdmissible actions:\n- look\n- go to cabinet 1"
    answer = offline_answer(
        "offline/agent", [{"role": "system", "content": "Act."}, {"role": "user", "content": step}], seed=0
    )
    assert answer in ("look", "go to cabinet 1")


def fixed_policy(messages: list[dict], seed: int) -> str:
    """A domain's own offline policy, loaded by name (used below)."""
    return f"policy-answer {seed}"


def test_domain_offline_policy_reaches_the_offline_agent_through_litellm() -> None:
    """A domain may bring its own offline acting policy; the call goes through the real
    litellm path (metadata) and only in-process models receive it."""
    from types import SimpleNamespace

    from alma_tui.llm.client import LLMClient
    from alma_tui.llm.providers import policy_params

    domain = SimpleNamespace(offline_policy="tests.test_offline_llm:fixed_policy")
    messages = [
        {"role": "system", "content": "Act."},
        {"role": "user", "content": "You see a door.\n\nAdmissible actions:\n- open door"},
    ]
    answer = LLMClient().complete(
        messages, model="offline/agent", role="agent", seed=7, **policy_params("offline/agent", domain)
    )
    assert answer == "policy-answer 7"
    assert policy_params("openai/gpt-4o-mini", domain) == {}
    assert policy_params("offline/agent", SimpleNamespace()) == {}
