"""Built-in ``household`` domain: procedurally generated ALFWorld-like text tasks.

Why it exists: a real search needs a domain that runs in microseconds, needs no
download, and in which *memory genuinely helps*, one regularity at a time, so that
a search has a ladder of improvements to climb and each rung is measurable. Text
and actions follow ALFWorld's style ("You arrive at cabinet 3. The cabinet 3 is
closed.", "take mug 1 from cabinet 3", "put mug 1 in/on coffeemachine 1").
Everything is deterministic for a :class:`TaskSpec`; train and test task seeds are
disjoint by parity. The regularities, from easiest to hardest to capture:

1. **Object placement** (captured by remembering where objects were found, best
   by aggregating counts). Each house kind fixes, for each object kind, a primary
   receptacle (p=0.75) and a secondary one (p=0.2); otherwise the object is anywhere.
   An agent without memory searches ~25 receptacles, most of them closed, within
   a tight step limit.
2. **More sightings than pick-ups** (captured by recording every object *seen*
   in an opened receptacle). The house's other chore objects are always around,
   so every visit teaches about several object kinds, not only the goal's.
3. **House kinds recognisable only from the first observation** (captured by
   keying memory on the receptacle layout). There are five house kinds; the
   first observation never names them, but each has its own receptacle layout.
   The same object kind lives in different places in different house kinds (and
   the same receptacle names exist in all of them), so evidence pooled across
   houses points to the wrong receptacle.
4. **Tools that differ by house kind, and actions that fail** (captured by
   remembering which tool *worked*, per house kind). Cleaning works at a
   sinkbasin or a bathtubbasin, heating at the microwave, a stoveburner or the
   toaster, cooling at the fridge; in each house kind exactly one receptacle
   works for each verb. Using another one is admissible but fails ("The
   microwave 1 is broken."); a visit shows its out-of-order sign, which the
   offline agent does not read but a memory can record. A memory that copies
   every tool *attempt* repeats those mistakes; one that keeps what worked (or
   remembers what failed, or which tools carry a sign) does not.
5. **Chores needing two objects** (captured by returning more than one place
   per object kind). About one chore in five asks for two objects of a kind
   ("put two mugs in shelf 1"); the house then holds three, placed as in 1.
6. **Distractors that punish copying whole trajectories.** A past episode of the
   same object kind usually comes from another house kind, whose receptacles have
   the same names but other contents; its detours read as advice.
7. **Locations drift over time, so recency matters** (captured by keeping *when*
   each object was seen and counting first what was seen on days near the task's).
   Every task happens on a day of the year (0-99), stated in its first observation
   ("It is day 37."). From day 50 on (the second season) apples, mugs and pens are
   kept in the same place in every house (:data:`SEASONAL`: fridge 1, cabinet 1,
   drawer 1) instead of the house kind's own primary receptacle; their secondary one
   does not move. Tasks come from the whole year, so counts pooled over it mix the
   two seasons, and a house kind's own evidence of the new place is thin; sightings
   from nearby days, in any house, show it. How near is a trade-off (narrow: little
   evidence; wide: stale evidence).

``HouseholdDomain.truth()`` exposes these regularities (for the benchmark's and the
tests' *oracle* design only; it is never shown to a searched design).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from alma_tui.domains.base import StepResult, TaskSpec

__all__ = ["HOUSES", "MAX_STEPS", "HouseholdDomain", "HouseholdEnv", "layout_signature", "places_on"]

MAX_STEPS = 12
DAYS = 100  # a task's day of the year: 0 .. DAYS-1
EPOCH_DAYS = 50  # the seasons: days 0-49 and 50-99
EPOCHS = DAYS // EPOCH_DAYS
P_PRIMARY = 0.75
P_SECONDARY = 0.2
P_USUAL_TARGET = 0.7  # a chore usually has its house's destination for that object
P_TWO = 0.2  # share of chores that ask for two objects of a kind
GOAL_INSTANCES = 2  # how many of the goal object a house holds (3 for a two-object chore)

UNCOUNTABLE = {"bread", "lettuce"}  # never asked for in twos
OPENABLE = {"cabinet", "drawer", "fridge", "microwave"}
# Receptacle types at which a verb can be *tried*; each house kind has one that works.
TOOL_TYPES = {
    "clean": ("sinkbasin", "bathtubbasin"),
    "heat": ("microwave", "stoveburner", "toaster"),
    "cool": ("fridge",),
}
STATE_WORD = {"clean": "clean", "heat": "hot", "cool": "cool"}
PAST = {"clean": "clean", "heat": "heat", "cool": "cool"}
FAILURE = {
    "sinkbasin": "The {r} is clogged: the water does not run.",
    "bathtubbasin": "The {r} is dry: the tap does not work.",
    "microwave": "The {r} is broken: it does not heat.",
    "stoveburner": "The {r} does not light.",
    "toaster": "The {r} is unplugged.",
    "fridge": "The {r} is broken: it is warm inside.",
}


@dataclass(frozen=True)
class HouseKind:
    """A world family: its receptacles, the chores (goal object kinds) it poses, and
    the receptacle that works for each tool verb."""

    name: str
    layout: tuple[tuple[str, int], ...]
    goal_kinds: tuple[str, ...]
    tools: tuple[tuple[str, str], ...]

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
            (("clean", "sinkbasin 1"), ("heat", "microwave 1"), ("cool", "fridge 1")),
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
            ("mug", "tomato", "pen", "apple"),
            (("clean", "sinkbasin 1"), ("heat", "stoveburner 3"), ("cool", "fridge 1")),
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
            ("potato", "bread", "mug", "knife"),
            (("clean", "bathtubbasin 1"), ("heat", "stoveburner 2"), ("cool", "fridge 1")),
        ),
        HouseKind(
            "studio",
            (
                ("cabinet", 6),
                ("drawer", 7),
                ("countertop", 2),
                ("shelf", 4),
                ("fridge", 1),
                ("microwave", 1),
                ("sinkbasin", 1),
                ("stoveburner", 2),
                ("toaster", 1),
                ("sidetable", 2),
            ),
            ("apple", "book", "tomato", "knife"),
            (("clean", "sinkbasin 1"), ("heat", "toaster 1"), ("cool", "fridge 1")),
        ),
        HouseKind(
            "townhouse",
            (
                ("cabinet", 11),
                ("drawer", 3),
                ("countertop", 2),
                ("shelf", 2),
                ("fridge", 1),
                ("microwave", 1),
                ("sinkbasin", 1),
                ("bathtubbasin", 1),
                ("stoveburner", 3),
                ("diningtable", 1),
                ("garbagecan", 1),
            ),
            ("bread", "pen", "potato", "mug"),
            (("clean", "bathtubbasin 1"), ("heat", "microwave 1"), ("cool", "fridge 1")),
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
    "to see or put things inside. To clean an object use a sinkbasin or a bathtubbasin, to "
    "heat it a microwave, a stoveburner or a toaster, to cool it a fridge (while holding it); "
    "in each house only some of them work. You have a limited number of steps."
)


def _group(kind: str) -> str:
    return "food" if kind in FOOD else "dish" if kind in DISH else "thing"


def _preferences(house: HouseKind) -> dict[str, tuple[str, str]]:
    """Primary and secondary receptacle of each object kind in a house kind (in the first
    season, for a drifting kind).

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


# Seasonal storage: from day DAYS // 2 on, these kinds are kept in the same place in every house.
SEASONAL: dict[str, str] = {"apple": "fridge 1", "mug": "cabinet 1", "pen": "drawer 1"}


def _seasons(house: HouseKind) -> dict[str, list[tuple[str, str]]]:
    """(primary, secondary) of each object kind in each season (``EPOCHS`` of them).

    A seasonal kind's primary receptacle is the house kind's own in the first season and its
    :data:`SEASONAL` place (the same in every house) in the second; its secondary one never
    moves. Other kinds never move."""
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, (primary, secondary) in PREFERENCES[house.name].items():
        later = SEASONAL.get(kind, primary)
        out[kind] = [(primary, secondary), (later, secondary)]
    return out


SEASONS: dict[str, dict[str, list[tuple[str, str]]]] = {n: _seasons(h) for n, h in HOUSES.items()}


def places_on(house: str, kind: str, day: int) -> tuple[str, str]:
    """(primary, secondary) receptacle of an object kind in a house kind on a day."""
    return SEASONS[house][kind][min(EPOCHS - 1, max(0, day) // EPOCH_DAYS)]


def _listing(objs: list[str]) -> str:
    if not objs:
        return "nothing"
    items = [f"a {o}" for o in objs]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _broken(house: HouseKind) -> frozenset[str]:
    """Receptacles of a house kind where a tool verb can be tried but fails."""
    working = {r for _, r in house.tools}
    tool_types = {t for types in TOOL_TYPES.values() for t in types}
    return frozenset(r for r in house.receptacles() if r.split()[0] in tool_types and r not in working)


BROKEN: dict[str, frozenset[str]] = {n: _broken(h) for n, h in HOUSES.items()}


def plural(kind: str) -> str:
    """English plural of an object kind (for two-object chores)."""
    if kind.endswith("fe"):
        return kind[:-2] + "ves"
    if kind.endswith("o"):
        return kind + "es"
    return kind + "s"


def layout_signature(observation: str) -> str:
    """The receptacle layout listed in a first observation ("cabinet8 drawer5 ..."):
    what identifies a house kind, since the observation never names it."""
    m = re.search(r"you see (.*?)\.(?:\s|$)", observation.lower())
    counts: dict[str, int] = {}
    for typ, _ in re.findall(r"\b([a-z]+) (\d+)\b", m.group(1) if m else ""):
        counts[typ] = counts.get(typ, 0) + 1
    return " ".join(f"{t}{n}" for t, n in sorted(counts.items()))


@dataclass
class World:
    """Everything needed to run one task, generated from the task seed alone."""

    house: str
    receptacles: list[str]
    contents: dict[str, list[str]]
    kind: str
    transform: str  # "", "clean", "heat" or "cool"
    target: str
    count: int = 1  # how many objects of the kind the chore needs (1 or 2)
    day: int = 0  # the task's day of the year (drifting kinds move with the seasons)

    @property
    def goal(self) -> str:
        if self.count == 2:
            return f"put two {plural(self.kind)} in {self.target}"
        adj = f"{STATE_WORD[self.transform]} " if self.transform else ""
        art = "an" if (adj or self.kind)[0] in "aeiou" else "a"
        return f"put {art} {adj}{self.kind} in {self.target}"


def generate_world(task_seed: int) -> World:
    """Build the house, the goal and the object placement for a task seed."""
    rng = random.Random(task_seed * 7919 + 17)
    house = HOUSES[rng.choice(sorted(HOUSES))]
    # Its own stream, so the day leaves every other draw of the task as it was.
    day = random.Random(f"day:{task_seed}").randrange(DAYS)
    prefs = {k: places_on(house.name, k, day) for k in OBJECTS}
    recs = house.receptacles()
    kind = rng.choice(house.goal_kinds)
    count = 2 if rng.random() < P_TWO and kind not in UNCOUNTABLE else 1
    transform = rng.choice(("",) + OBJECTS[kind]) if OBJECTS[kind] and count == 1 else ""
    tool_places = {r for _, r in house.tools}
    # never one of the kind's usual places, in any season (so the usual target stays put)
    usual_places = {r for pair in SEASONS[house.name][kind] for r in pair}
    targets = [r for r in recs if r.split()[0] in TARGET_TYPES and r not in usual_places and r not in tool_places]
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
    for i in range(1, GOAL_INSTANCES + count):
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
    return World(house.name, recs, contents, kind, transform, target, count, day)


class HouseholdEnv:
    """One episode of one household task (implements ``domains.base.Env``)."""

    def __init__(self, task: TaskSpec, max_steps: int = MAX_STEPS) -> None:
        self.task = task
        self.max_steps = max_steps
        self.world = generate_world(task.seed)
        self.goal = self.world.goal
        self.tools = dict(HOUSES[self.world.house].tools)
        self.broken = BROKEN[self.world.house]
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
        # The house kind is deliberately not named: only its layout tells it apart.
        return (
            f"You are in the middle of a room. Looking quickly around you, "
            f"you see {_listing(w.receptacles)}.\n\nIt is day {w.day}.\n\nYour task is to: {self.goal}."
        )

    def _visible(self, rec: str) -> bool:
        return rec.split()[0] not in OPENABLE or rec in self.opened

    def _describe(self, rec: str) -> str:
        typ = rec.split()[0]
        # A tool that does not work in this house shows it, to whoever reads the sign.
        sign = f" The {rec} has an out-of-order sign." if rec in self.broken else ""
        if typ in OPENABLE:
            if rec not in self.opened:
                return f"The {rec} is closed.{sign}"
            return f"The {rec} is open. In it, you see {_listing(self.contents[rec])}.{sign}"
        return f"On the {rec}, you see {_listing(self.contents[rec])}.{sign}"

    def admissible_actions(self) -> list[str]:
        if self._adm is not None:
            return list(self._adm)
        acts = [f"go to {r}" for r in self.world.receptacles if r != self.loc]
        loc = self.loc
        if loc is not None:
            typ = loc.split()[0]
            if typ in OPENABLE:
                acts.append(f"close {loc}" if loc in self.opened else f"open {loc}")
            if self._visible(loc):
                if self.holding is None:
                    acts += [f"take {o} from {loc}" for o in self.contents[loc]]
                else:
                    acts.append(f"put {self.holding} in/on {loc}")
            if self.holding is not None:
                for verb, types in TOOL_TYPES.items():
                    if typ in types:
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
            self._check_goal(loc)
            return f"You put the {obj} in/on the {loc}."
        if verb in TOOL_TYPES and self.holding is not None and loc is not None:
            if self.tools.get(verb) != loc:  # this house's working tool is another one
                return FAILURE[loc.split()[0]].format(r=loc)
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

    def _check_goal(self, loc: str) -> None:
        w = self.world
        if loc != w.target:
            return
        done = [
            o
            for o in self.contents[loc]
            if o.split()[0] == w.kind and (not w.transform or STATE_WORD[w.transform] in self.states.get(o, set()))
        ]
        if len(done) >= w.count:
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
                "count": w.count,
                "day": w.day,
            }
            out.append(TaskSpec(f"household-{split}-{task_seed}", w.goal, split, task_seed, meta))
        return out

    def make_env(self, task: TaskSpec) -> HouseholdEnv:
        return HouseholdEnv(task, self.max_steps)

    def requirements(self) -> str | None:
        return None

    @staticmethod
    def truth() -> dict[str, dict]:
        """The true regularities, per house kind keyed by its layout signature:
        ``{signature: {"house", "places": {kind: [[primary, secondary] per season]},
        "tools": {verb: rec}, "epoch_days": n}}`` (season = day // epoch_days).
        For oracle designs in benchmarks and tests only; never shown to a searched design."""
        out: dict[str, dict] = {}
        for name, h in HOUSES.items():
            sig = layout_signature(f"you see {_listing(h.receptacles())}.")
            out[sig] = {
                "house": name,
                "places": {k: [list(p) for p in SEASONS[name][k]] for k in OBJECTS},
                "tools": dict(h.tools),
                "epoch_days": EPOCH_DAYS,
            }
        return out
