"""Tiny ALFWorld game sets in ALFWorld's own on-disk format, for tests without the download.

A game folder is what ``alfworld-download`` unpacks: ``traj_data.json`` (task type and PDDL
parameters) and ``game.tw-pddl`` (JSON: the PDDL domain, the text grammar with the goal
filled in, the PDDL problem, ``solvable``). The problem here is hand-written in the shape of
ALFWorld's ``initial_state.pddl`` (typed objects, receptacles and locations; ``inReceptacle``,
``receptacleAtLocation``, ``openable``, ``heatable``...) and the goal is the one the
package's own goal library gives for the task type. When the ``alfworld`` package is
installed the domain and grammar are the packaged ``alfred.pddl``/``alfred.twl2`` and the goal
text comes from alfworld's ``add_task_to_grammar``, so the package's env plays these games as
it plays the real ones; without it (data-discovery tests) placeholders stand in.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

RECEPTACLES = (
    ("Cabinet", True),
    ("Cabinet", True),
    ("Drawer", True),
    ("CounterTop", False),
    ("Microwave", True),
    ("SinkBasin", False),
    ("Fridge", True),
    ("DiningTable", False),
    ("SideTable", False),
)
PROPS = ("pickupable", "cleanable", "heatable", "coolable")


@dataclass
class GameSpec:
    task_type: str
    obj: str  # object type, e.g. "Mug"
    recep: str  # target receptacle type, e.g. "CounterTop"
    where: int  # index into RECEPTACLES where the object lies
    lamp_at: int | None = None  # for look_at_obj_in_light: where the DeskLamp is
    copies: int = 1
    solvable: bool = True
    extra: dict = field(default_factory=dict)


def _problem(spec: GameSpec, goal_pddl: str) -> str:
    objects = [(f"{spec.obj}_bar_{i + 1}", spec.obj, spec.where, PROPS) for i in range(spec.copies)]
    objects.append(("Apple_bar_9", "Apple", 3, ("pickupable",)))  # a distractor on the countertop
    if spec.lamp_at is not None:
        objects.append(("DeskLamp_bar_1", "DeskLamp", spec.lamp_at, ("toggleable",)))
    # ALFWorld names a sink basin "Sink|<pos>|SinkBasin" (its demangler then says "sinkbasin 1")
    receps = [
        (f"Sink_bar_{i}_bar_SinkBasin" if t == "SinkBasin" else f"{t}_bar_{i}", t, op)
        for i, (t, op) in enumerate(RECEPTACLES)
    ]
    otypes = sorted({o[1] for o in objects})
    rtypes = sorted({t for _, t, _ in receps})
    decl = ["agent1 - agent"]
    decl += [f"{t}Type - otype" for t in otypes] + [f"{t}Type - rtype" for t in rtypes]
    decl += [f"{o[0]} - object" for o in objects] + [f"{r[0]} - receptacle" for r in receps]
    decl += ["loc_start - location"] + [f"loc_{i} - location" for i in range(len(receps))]
    init = ["(atLocation agent1 loc_start)"]
    for i, (rid, rtype, openable) in enumerate(receps):
        init += [f"(receptacleType {rid} {rtype}Type)", f"(receptacleAtLocation {rid} loc_{i})"]
        init += [f"(canContain {rtype}Type {t}Type)" for t in otypes]
        if openable:
            init.append(f"(openable {rid})")
    for oid, otype, where, props in objects:
        init += [f"(objectType {oid} {otype}Type)", f"(inReceptacle {oid} {receps[where][0]})"]
        init += [f"(objectAtLocation {oid} loc_{where})"] + [f"({p} {oid})" for p in props]
    return (
        f"(define (problem tiny)\n(:domain alfred)\n(:objects\n{chr(10).join(decl)}\n)\n"
        f"(:init\n{chr(10).join(init)}\n)\n{goal_pddl}"
    )


def write_game(root: Path, spec: GameSpec, name: str) -> Path:
    """Write one game folder under ``root`` (a split folder such as .../json_2.1.1/train)."""
    trial = root / f"{spec.task_type}-{spec.obj}-None-{spec.recep}-{name}" / "trial_T0"
    trial.mkdir(parents=True, exist_ok=True)
    params = {
        "object_target": spec.obj,
        "parent_target": spec.recep,
        "toggle_target": "DeskLamp" if spec.lamp_at is not None else "",
        "mrecep_target": "",
        "object_sliced": False,
    }
    traj = {"task_type": spec.task_type, "pddl_params": params, **spec.extra}
    (trial / "traj_data.json").write_text(json.dumps(traj))
    try:
        from alfworld.agents.utils.misc import add_task_to_grammar
        from alfworld.gen.goal_library import gdict
        from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

        domain = Path(ALFRED_PDDL_PATH).read_text()
        grammar = add_task_to_grammar(Path(ALFRED_TWL2_PATH).read_text(), traj, rng=random.Random(0))
        goal = gdict[spec.task_type]["pddl"].format(
            obj=spec.obj, recep=spec.recep, toggle=params["toggle_target"], mrecep=""
        )
    except ImportError:  # data-discovery tests only read the JSON around the PDDL
        domain = "(define (domain alfred))"
        grammar = json.dumps(
            {"intro": [{"rhs": f"Your task is to: put a {spec.obj.lower()} in {spec.recep.lower()}."}]}
        )
        goal = "(:goal (and))\n)"
    problem = _problem(spec, goal.replace("#", "-"))
    (trial / "initial_state.pddl").write_text(problem)
    game = {"pddl_domain": domain, "grammar": grammar, "pddl_problem": problem, "solvable": spec.solvable}
    (trial / "game.tw-pddl").write_text(json.dumps({**game, "walkthrough": None}))
    return trial


STANDARD = (
    GameSpec("pick_and_place_simple", "Mug", "CounterTop", where=1),
    GameSpec("pick_heat_then_place_in_recep", "Egg", "DiningTable", where=6),
    GameSpec("pick_clean_then_place_in_recep", "Plate", "CounterTop", where=2),
    GameSpec("pick_cool_then_place_in_recep", "Tomato", "SideTable", where=0),
    GameSpec("look_at_obj_in_light", "Book", "SideTable", where=7, lamp_at=8),
    GameSpec("pick_two_obj_and_place", "Pen", "DiningTable", where=2, copies=2),
)


def write_dataset(root: Path, per_split: int = 1) -> Path:
    """A data root (what $ALFWORLD_DATA points at) with train/valid_seen/valid_unseen folders,
    ``per_split`` copies of each of the six task types in each."""
    for split in ("train", "valid_seen", "valid_unseen"):
        for k in range(per_split):
            for i, spec in enumerate(STANDARD):
                write_game(root / "json_2.1.1" / split, spec, f"{split}{k}{i}")
    return root
