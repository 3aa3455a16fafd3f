"""Built-in ``household`` domain: procedurally generated ALFWorld-like text tasks.

Why it exists: a real search needs a domain that runs in microseconds, needs no
download, and in which *memory genuinely helps*. Each task is a house of one of a
few **house kinds** (world families). A house kind fixes the receptacle layout and
where each object kind is usually kept: the object sits in its kind's primary
receptacle with p=0.6, its secondary with p=0.25, else anywhere. An agent without
memory must search ~25 receptacles (most of them closed) within a tight step
limit; an agent that remembers where mugs were in past cottages goes straight
there. A few heating/cleaning decoys (stoveburners, a toaster, a bathtubbasin)
make remembering the right tool useful too.

Text and actions follow ALFWorld's style ("You arrive at cabinet 3. The cabinet 3
is closed.", "take mug 1 from cabinet 3", "put mug 1 in/on coffeemachine 1").
Everything is deterministic for a :class:`TaskSpec`; train and test task seeds are
disjoint by parity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from alma_tui.domains.base import StepResult, TaskSpec

__all__ = ["HOUSES", "MAX_STEPS", "HouseholdDomain", "HouseholdEnv"]

MAX_STEPS = 16
P_PRIMARY = 0.7
P_SECONDARY = 0.2
P_USUAL_TARGET = 0.7  # a chore usually has its house's destination for that object
GOAL_INSTANCES = (2,)  # how many of the goal object a house holds (uniform choice)

OPENABLE = {"cabinet", "drawer", "fridge", "microwave"}
TOOLS = {"clean": "sinkbasin", "heat": "microwave", "cool": "fridge"}
STATE_WORD = {"clean": "clean", "heat": "hot", "cool": "cool"}
PAST = {"clean": "clean", "heat": "heat", "cool": "cool"}


@dataclass(frozen=True)
class HouseKind:
    """A world family: its receptacles and the chores (goal object kinds) it poses."""

    name: str
    layout: tuple[tuple[str, int], ...]
    goal_kinds: tuple[str, ...]

    def receptacles(self) -> list[str]:
        return [f"{typ} {i}" for typ, n in self.layout for i in range(1, n + 1)]


HOUSES: dict[str, HouseKind] = {
    h.name: h
    for h in (
        HouseKind(
            "cottage",
            (
                ("cabinet", 8),
                ("drawer", 5),
                ("countertop", 2),
                ("shelf", 2),
                ("fridge", 1),
                ("microwave", 1),
                ("sinkbasin", 1),
                ("stoveburner", 2),
                ("coffeemachine", 1),
                ("diningtable", 1),
                ("garbagecan", 1),
                ("sidetable", 1),
            ),
            ("mug", "apple", "book", "potato"),
        ),
        HouseKind(
            "apartment",
            (
                ("cabinet", 9),
                ("drawer", 6),
                ("countertop", 1),
                ("shelf", 3),
                ("fridge", 1),
                ("microwave", 1),
                ("sinkbasin", 1),
                ("stoveburner", 4),
                ("coffeemachine", 1),
                ("toaster", 1),
                ("garbagecan", 1),
            ),
            ("cup", "tomato", "pen", "egg"),
        ),
        HouseKind(
            "farmhouse",
            (
                ("cabinet", 10),
                ("drawer", 4),
                ("countertop", 3),
                ("diningtable", 1),
                ("fridge", 1),
                ("microwave", 1),
                ("sinkbasin", 1),
                ("bathtubbasin", 1),
                ("stoveburner", 2),
                ("shelf", 1),
                ("coffeemachine", 1),
                ("garbagecan", 1),
            ),
            ("lettuce", "bread", "pan", "knife"),
        ),
    )
}

# Object kinds and the transformations a goal may ask for ("" = plain put).
OBJECTS: dict[str, tuple[str, ...]] = {
    "mug": ("clean", "heat", "cool"),
    "cup": ("clean", "heat", "cool"),
    "plate": ("clean",),
    "bowl": ("clean", "cool"),
    "pan": ("clean", "cool"),
    "knife": ("clean",),
    "spoon": ("clean",),
    "apple": ("clean", "heat", "cool"),
    "potato": ("clean", "heat", "cool"),
    "tomato": ("clean", "heat", "cool"),
    "egg": ("heat", "cool"),
    "bread": ("heat", "cool"),
    "lettuce": ("clean", "cool"),
    "book": (),
    "pen": (),
    "cd": (),
    "keychain": (),
    "vase": (),
    "candle": (),
    "soapbar": (),
    "sponge": (),
    "saltshaker": (),
    "spatula": (),
}
# Receptacle types where an object kind may plausibly be kept (its usual places
# are drawn from these; the 15% "anywhere" branch ignores them).
PLAUSIBLE: dict[str, tuple[str, ...]] = {
    "food": ("fridge", "countertop", "cabinet", "diningtable", "shelf", "drawer"),
    "dish": ("cabinet", "drawer", "countertop", "shelf", "diningtable"),
    "thing": ("drawer", "shelf", "cabinet", "sidetable", "diningtable", "countertop"),
}
FOOD = {"apple", "potato", "tomato", "egg", "bread", "lettuce"}
DISH = {"mug", "cup", "plate", "bowl", "pan", "knife", "spoon", "spatula", "saltshaker"}
# Receptacle types a goal may name as destination.
TARGET_TYPES = (
    "countertop",
    "diningtable",
    "shelf",
    "sidetable",
    "coffeemachine",
    "fridge",
    "drawer",
)

INSTRUCTIONS = (
    "You are an agent in a household. Each turn you see an observation and the list of "
    "admissible actions. Reply with exactly one admissible action, copied verbatim, and "
    "nothing else. Closed receptacles (cabinets, drawers, fridge, microwave) must be opened "
    "to see or put things inside. To clean an object use a sinkbasin, to heat it a microwave, "
    "to cool it a fridge (while holding it). You have a limited number of steps."
)


def _group(kind: str) -> str:
    return "food" if kind in FOOD else "dish" if kind in DISH else "thing"


def _preferences(house: HouseKind) -> dict[str, tuple[str, str]]:
    """Primary and secondary receptacle of each object kind in a house kind.

    Fixed per house kind (seeded by its name), so it is the regularity that
    memory can learn across tasks, identical in the train and test splits.
    """
    recs = house.receptacles()
    prefs: dict[str, tuple[str, str]] = {}
    for kind in OBJECTS:
        rng = random.Random(f"prefs:{house.name}:{kind}")
        types = PLAUSIBLE[_group(kind)]
        cands = [r for r in recs if r.split()[0] in types]
        primary, secondary = rng.sample(cands, 2)
        prefs[kind] = (primary, secondary)
    return prefs


PREFERENCES: dict[str, dict[str, tuple[str, str]]] = {n: _preferences(h) for n, h in HOUSES.items()}


def _listing(objs: list[str]) -> str:
    if not objs:
        return "nothing"
    items = [f"a {o}" for o in objs]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


@dataclass
class World:
    """Everything needed to run one task, generated from the task seed alone."""

    house: str
    receptacles: list[str]
    contents: dict[str, list[str]]
    kind: str
    transform: str  # "", "clean", "heat" or "cool"
    target: str

    @property
    def goal(self) -> str:
        adj = f"{STATE_WORD[self.transform]} " if self.transform else ""
        art = "an" if (adj or self.kind)[0] in "aeiou" else "a"
        return f"put {art} {adj}{self.kind} in {self.target}"


def generate_world(task_seed: int) -> World:
    """Build the house, the goal and the object placement for a task seed."""
    rng = random.Random(task_seed * 7919 + 17)
    house = HOUSES[rng.choice(sorted(HOUSES))]
    prefs = PREFERENCES[house.name]
    recs = house.receptacles()
    kind = rng.choice(house.goal_kinds)
    transform = rng.choice(("",) * 2 + OBJECTS[kind]) if OBJECTS[kind] else ""
    targets = [r for r in recs if r.split()[0] in TARGET_TYPES and r not in prefs[kind]]
    if kind not in {"mug", "cup"}:
        targets = [r for r in targets if not r.startswith("coffeemachine")]
    if kind not in FOOD:
        targets = [r for r in targets if not r.startswith("fridge")]
    usual = random.Random(f"target:{house.name}:{kind}").choice(targets)
    target = usual if rng.random() < P_USUAL_TARGET else rng.choice(targets)

    def place(k: str) -> str:
        primary, secondary = prefs[k]
        r = rng.random()
        if r < P_PRIMARY:
            return primary
        if r < P_PRIMARY + P_SECONDARY:
            return secondary
        return rng.choice([x for x in recs if x != target])

    contents: dict[str, list[str]] = {r: [] for r in recs}
    for i in range(1, rng.choice(GOAL_INSTANCES) + 1):
        contents[place(kind)].append(f"{kind} {i}")
    # The house's other chore objects are always around (so every visit to a house
    # teaches something about them), plus a random set of other things.
    chores = [k for k in house.goal_kinds if k != kind]
    others = [k for k in sorted(OBJECTS) if k not in house.goal_kinds]
    for k in chores + rng.sample(others, rng.randint(6, 9)):
        for i in range(1, rng.choice((1, 1, 2)) + 1):
            loc = place(k)
            if loc == target:  # keep the destination uncluttered
                continue
            contents[loc].append(f"{k} {i}")
    return World(house.name, recs, contents, kind, transform, target)


class HouseholdEnv:
    """One episode of one household task (implements ``domains.base.Env``)."""

    def __init__(self, task: TaskSpec, max_steps: int = MAX_STEPS) -> None:
        self.task = task
        self.max_steps = max_steps
        self.world = generate_world(task.seed)
        self.goal = self.world.goal
        self.reset()

    # -- state -------------------------------------------------------------
    def reset(self) -> str:
        w = self.world
        self.contents = {r: list(objs) for r, objs in w.contents.items()}
        self.opened: set[str] = set()
        self.states: dict[str, set[str]] = {}
        self.loc: str | None = None
        self.holding: str | None = None
        self.steps = 0
        self.done = False
        self.success = False
        self._adm: list[str] | None = None
        return (
            f"You are in the middle of a room in a {w.house}. Looking quickly around you, "
            f"you see {_listing(w.receptacles)}.\n\nYour task is to: {self.goal}."
        )

    def _visible(self, rec: str) -> bool:
        return rec.split()[0] not in OPENABLE or rec in self.opened

    def _describe(self, rec: str) -> str:
        if rec.split()[0] in OPENABLE:
            if rec not in self.opened:
                return f"The {rec} is closed."
            return f"The {rec} is open. In it, you see {_listing(self.contents[rec])}."
        return f"On the {rec}, you see {_listing(self.contents[rec])}."

    def admissible_actions(self) -> list[str]:
        if self._adm is not None:
            return list(self._adm)
        acts = [f"go to {r}" for r in self.world.receptacles if r != self.loc]
        loc = self.loc
        if loc is not None:
            if loc.split()[0] in OPENABLE:
                acts.append(f"close {loc}" if loc in self.opened else f"open {loc}")
            if self._visible(loc):
                if self.holding is None:
                    acts += [f"take {o} from {loc}" for o in self.contents[loc]]
                else:
                    acts.append(f"put {self.holding} in/on {loc}")
            if self.holding is not None:
                for verb, typ in TOOLS.items():
                    if loc.split()[0] == typ:
                        acts.append(f"{verb} {self.holding} with {loc}")
            acts.append(f"examine {loc}")
        acts += ["inventory", "look"]
        self._adm = acts
        return list(acts)

    def score(self) -> float:
        return 1.0 if self.success else 0.0

    # -- dynamics ----------------------------------------------------------
    def step(self, action: str) -> StepResult:
        if self.done:
            return StepResult("The episode is over.", 0.0, True, self.success)
        action = " ".join(action.strip().lower().split())
        self.steps += 1
        obs = self._apply(action) if action in self.admissible_actions() else "Nothing happens."
        self._adm = None
        if self.success or self.steps >= self.max_steps:
            self.done = True
        return StepResult(obs, 1.0 if self.success else 0.0, self.done, self.success)

    def _apply(self, action: str) -> str:
        verb, _, rest = action.partition(" ")
        loc = self.loc
        if verb == "go":
            self.loc = rest[3:]
            return f"You arrive at {self.loc}. {self._describe(self.loc)}"
        if verb == "open":
            self.opened.add(rest)
            return f"You open the {rest}. {self._describe(rest)}"
        if verb == "close":
            self.opened.discard(rest)
            return f"You close the {rest}."
        if verb == "take" and loc is not None:
            obj = rest.split(" from ")[0]
            self.contents[loc].remove(obj)
            self.holding = obj
            return f"You pick up the {obj} from the {loc}."
        if verb == "put" and loc is not None and self.holding is not None:
            obj = self.holding
            self.contents[loc].append(obj)
            self.holding = None
            self._check_goal(obj, loc)
            return f"You put the {obj} in/on the {loc}."
        if verb in TOOLS and self.holding is not None:
            obj = self.holding
            st = self.states.setdefault(obj, set())
            st.add(STATE_WORD[verb])
            if verb == "heat":
                st.discard("cool")
            elif verb == "cool":
                st.discard("hot")
            return f"You {PAST[verb]} the {obj} using the {loc}."
        if verb == "examine":
            return self._describe(rest)
        if verb == "inventory":
            return f"You are carrying: a {self.holding}." if self.holding else "You are not carrying anything."
        if verb == "look":
            if loc is None:
                return "You are in the middle of a room. You see nothing new."
            return f"You are facing the {loc}. Next to it, you see nothing."
        return "Nothing happens."

    def _check_goal(self, obj: str, loc: str) -> None:
        w = self.world
        if loc != w.target or obj.split()[0] != w.kind:
            return
        if w.transform and STATE_WORD[w.transform] not in self.states.get(obj, set()):
            return
        self.success = True


class HouseholdDomain:
    """The ``household`` domain (implements ``domains.base.Domain``)."""

    name = "household"
    description = "Built-in ALFWorld-like text households (find, take, clean/heat/cool, put); fast, no dependencies"
    instructions = INSTRUCTIONS
    offline_policy = "alma_tui.offline.policy:choose_action"

    def __init__(self, max_steps: int = MAX_STEPS) -> None:
        self.max_steps = max_steps

    def tasks(self, split: str, seed: int, n: int | None = None) -> list[TaskSpec]:
        """``n`` tasks of a split (default 40). Train task seeds are even, test odd,
        so the splits never overlap; a list for ``n`` is a prefix of one for ``n+k``."""
        if split not in ("train", "test"):
            raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
        n = 40 if n is None else n
        rng = random.Random(f"household:{split}:{seed}")
        parity = 0 if split == "train" else 1
        out: list[TaskSpec] = []
        seen: set[int] = set()
        while len(out) < n:
            k = rng.randrange(1_000_000)
            if k in seen:
                continue
            seen.add(k)
            task_seed = 2 * k + parity
            w = generate_world(task_seed)
            meta = {
                "house": w.house,
                "object": w.kind,
                "transform": w.transform,
                "target": w.target,
            }
            out.append(TaskSpec(f"household-{split}-{task_seed}", w.goal, split, task_seed, meta))
        return out

    def make_env(self, task: TaskSpec) -> HouseholdEnv:
        return HouseholdEnv(task, self.max_steps)

    def requirements(self) -> str | None:
        return None
