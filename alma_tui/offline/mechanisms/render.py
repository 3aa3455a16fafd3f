"""Rendering: genome -> a readable design module.

The module embeds its genome as ``MECHANISMS = {...}`` (read back by
:func:`alma_tui.offline.mechanisms.genome.genome_from_code`) and explains each
mechanism in its docstring, so a human can read and diff what the offline meta
agent wrote.
"""

# Long lines below are lines of the *generated* modules, kept verbatim so the
# template reads like the code it produces.

from __future__ import annotations

import json
import textwrap

from alma_tui.offline.mechanisms.genome import Genome, normalise

BUGS = ("name_error", "key_error")


def describe(g: Genome) -> list[str]:
    """One bullet per mechanism, for the module docstring (the why of each choice)."""
    if g["store"] == "none":
        return ["Stores nothing; the acting agent explores from scratch."]
    src = "successful episodes only (failures are not evidence)" if g["source"] == "success" else "every episode"
    out: list[str] = []
    if g["store"] == "facts":
        ev = (
            "where an object was picked up and every object seen in a visited receptacle"
            if g["evidence"] == "seen"
            else "where an object was picked up"
        )
        out.append(f"Extracts object-location facts ({ev}) from {src}, aggregated as counts.")
        ctx = (
            "per house kind (told apart by the layout in the first observation); the current "
            "house kind's evidence is used, all houses' only when it has none"
            if g["context"] == "house"
            else "across all houses"
        )
        out.append(f"Counts are kept {ctx}.")
        rank = "how often" if g["rank"] == "count" else "how recently"
        out.append(
            f"For the goal's object kind, returns the top {g['top_k']} receptacles ranked by {rank} "
            "it was found there, one line each, best first."
        )
        if g["window"]:
            out.append(
                f"Object locations drift over time: only sightings within {g['window']} days of the "
                "task's day count (all of them when none is that close)."
            )
        if g["negatives"]:
            out.append("Also reports receptacles where the object was looked for and absent.")
        if g["tools"] == "worked":
            out.append(
                "Remembers which receptacle cleaned/heated/cooled objects, for the goal's verb, "
                "counting only uses that worked."
            )
        elif g["tools"]:
            out.append("Remembers which receptacle was used to clean/heat/cool, for the goal's verb.")
        if g["failures"]:
            out.append(
                "Remembers tool attempts that failed and tools seen with an out-of-order sign, "
                "so the agent tries those last."
            )
        if g["plurals"]:
            out.append("Reads plural goal words (two-object chores) as their object kind.")
        if g["example"]:
            out.append("Appends the most similar successful action sequence as a worked example.")
    else:
        what = "whole trajectories (actions and observations)" if g["store"] == "trajectory" else "action sequences"
        out.append(f"Stores {what} of {src}.")
        if g["rank"] == "similarity":
            how = (
                "embedding cosine (word overlap if embeddings fail)"
                if g["similarity"] == "embed"
                else "goal word overlap"
            )
            out.append(f"Retrieves the top {g['top_k']} by {how} with the new goal.")
        else:
            out.append(f"Retrieves the {g['top_k']} most recent.")
        if g["object_filter"]:
            out.append("Only episodes that handled the goal's object kind are candidates.")
    out.append(f"Output is capped at {g['char_budget']} characters.")
    return out


def class_name(g: Genome) -> str:
    if g["store"] == "none":
        return "NoMemory"
    parts = {"trajectory": "Trajectory", "actions": "ActionPlan", "facts": "ObjectLocation"}[g["store"]]
    if g["store"] == "facts" and g["context"] == "house":
        parts = "HouseAware" + parts
    return parts + "Memory"


def default_title(g: Genome) -> str:
    if g["store"] == "none":
        return "No memory"
    if g["store"] == "facts":
        bits = ["object-location counts"]
        if g["context"] == "house":
            bits.append("per house kind")
        if g["evidence"] == "seen":
            bits.append("with sightings")
        if g["window"]:
            bits.append(f"within {g['window']} days")
        if g["negatives"]:
            bits.append("and misses")
        if g["tools"]:
            bits.append("+ tools that worked" if g["tools"] == "worked" else "+ tool rules")
        if g["failures"]:
            bits.append("+ failed tools")
        if g["plurals"]:
            bits.append("+ plurals")
        return " ".join(bits).capitalize()
    base = "Trajectory retrieval" if g["store"] == "trajectory" else "Action-plan retrieval"
    extra = []
    if g["source"] == "success":
        extra.append("successes only")
    if g["object_filter"]:
        extra.append("same object")
    extra.append(f"top-{g['top_k']} by {g['similarity'] if g['rank'] == 'similarity' else 'recency'}")
    return f"{base} ({', '.join(extra)})"


_HEADER = '''\
"""{title}

{bullets}

Written by the offline meta agent ({lineage}).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from alma_tui.design_api import Episode, MemoryDesign, Query, Services

# The mechanism choices this module implements (the offline meta agent reads
# this constant back to recombine designs; editing it alone changes nothing).
MECHANISMS = {mechanisms}

_WORD = re.compile(r"[a-z]+")
# Words that say nothing about which object or place a goal is about.
_STOP = {{"a", "an", "the", "some", "in", "on", "it", "put", "and", "to", "of", "your", "task", "is"}}


def _words(text: str) -> set[str]:
    return {{w for w in _WORD.findall((text or "").lower()) if w not in _STOP}}
'''

_FACTS_HELPERS = '''
# ALFWorld-style text: "take mug 1 from cabinet 3", "heat mug 1 with microwave 1",
# "You open the cabinet 3. ... In it, you see a mug 1, and a apple 2."
_TAKE = re.compile(r"\\btake ([a-z]+) \\d+ from ([a-z]+ \\d+)")
_TOOL = re.compile(r"\\b(clean|heat|cool) [a-z]+ \\d+ with ([a-z]+ \\d+)")
_PLACE = re.compile(r"(?:arrive at|open the|on the|facing the) ([a-z]+ \\d+)")
_ITEM = re.compile(r"\\ban? ([a-z]+) \\d+")
_LISTING = re.compile(r"you see (.*?)\\.(?:\\s|$)")
_MENTION = re.compile(r"\\b([a-z]+) \\d+\\b")
_SIGN = re.compile(r"the ([a-z]+ \\d+) has an out-of-order sign")
_DAY = re.compile(r"it is day (\\d+)")
_TOOL_VERB = {{"sinkbasin": "clean", "bathtubbasin": "clean", "microwave": "heat", "stoveburner": "heat",
              "toaster": "heat", "fridge": "cool"}}
# Goal adjectives that imply a tool verb ("put a hot mug ..." -> heat).
_VERBS = {{"clean": "clean", "hot": "heat", "heat": "heat", "cool": "cool", "cold": "cool"}}


def _house(observation: str) -> str:
    """The house kind, told apart by the receptacle layout the first observation lists
    ("cabinet8 drawer5 ..."): houses are never named, but each kind has its own layout."""
    m = _LISTING.search((observation or "").lower())
    counts: dict[str, int] = {{}}
    for typ in _MENTION.findall(m.group(1) if m else ""):
        counts[typ] = counts.get(typ, 0) + 1
    return " ".join(f"{{t}}{{n}}" for t, n in sorted(counts.items())) or "?"


def _day(observation: str) -> int:
    """The task's day of the year, as its first observation states it ("It is day 37.")."""
    m = _DAY.search((observation or "").lower())
    return int(m.group(1)) if m else 0


def _sighting(observation: str) -> tuple[str, list[str]] | None:
    """(receptacle, object kinds listed in it) when an observation shows contents."""
    low = (observation or "").lower()
    if "you see" not in low or "looking quickly around" in low:
        return None
    place = _PLACE.search(low)
    if place is None:
        return None
    listed = low.split("you see", 1)[1]
    return place.group(1), _ITEM.findall(listed)
'''


def _facts_class(g: Genome, bug: str | None) -> str:
    k = g["top_k"]
    ctx_expr = "_house(episode.initial_observation)" if g["context"] == "house" else '"*"'
    qctx_expr = "_house(query.observation)" if g["context"] == "house" else '"*"'
    lines: list[str] = []
    a = lines.append
    a(f"class {class_name(g)}(MemoryDesign):")
    a('    """Aggregated "object kind -> receptacle" evidence; see the module docstring."""')
    a("")
    a("    def __init__(self, services: Services) -> None:")
    a("        super().__init__(services)")
    a("        # found[context][kind][receptacle] = number of times the kind was found there")
    a("        self.found: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))")
    a("        self.last_seen: dict = {}  # (context, kind, receptacle) -> episode index")
    if g["window"]:
        a("        # dated[context][kind] = [(day, receptacle), ...]: when each sighting was made")
        a("        self.dated: dict = defaultdict(lambda: defaultdict(list))")
    if g["negatives"]:
        a("        # missing[context][kind][receptacle] = times the goal object was looked for there in vain")
        a("        self.missing: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))")
    if g["tools"]:
        a("        # tools[context][verb][receptacle] = times a clean/heat/cool action used it")
        a("        self.tools: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))")
    if g["failures"]:
        a("        # failed[context][verb][receptacle] = times a clean/heat/cool attempt there failed")
        a("        self.failed: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))")
    if g["example"]:
        a("        self.examples: list[dict] = []  # successful action sequences, for a worked example")
    a("        self.totals: dict[str, int] = {}  # object kind -> times found anywhere")
    a("        self.n_episodes = 0")
    if g["window"]:
        a("        self.day = 0  # the day of the episode being read")
    a("")
    a("    def _add(self, ctx: str, kind: str, receptacle: str) -> None:")
    a('        # Every count is kept under the episode\'s context and under "*" (all houses),')
    a("        # so an unseen house kind still gets the global evidence.")
    a('        for c in {ctx, "*"}:')
    a("            self.found[c][kind][receptacle] += 1")
    if g["window"]:
        a("            self.dated[c][kind].append((self.day, receptacle))")
    a("            self.last_seen[(c, kind, receptacle)] = self.n_episodes")
    a("        self.totals[kind] = self.totals.get(kind, 0) + 1")
    a("")
    a("    def update(self, episode: Episode) -> None:")
    if g["source"] == "success":
        a("        # Only successful episodes count as evidence: a failed search may never")
        a("        # have reached the object, and its detours would look like knowledge.")
        a("        if not episode.success:")
        a("            return")
    a("        self.n_episodes += 1")
    a(f"        ctx = {ctx_expr}")
    if g["window"]:
        a("        self.day = _day(episode.initial_observation)")
    if g["negatives"]:
        a("        goal_words = _words(episode.goal)")
        a("        taken: set[str] = set()")
        a("        checked: list[tuple[str, list[str]]] = []")
    for_line = "        for step in episode.steps:"
    a(for_line)
    a('            action = (step.action or "").lower()')
    a("            take = _TAKE.search(action)")
    a("            if take:")
    a("                self._add(ctx, take.group(1), take.group(2))")
    if g["negatives"]:
        a("                taken.add(take.group(1))")
    if g["tools"] or g["failures"]:
        a("            tool = _TOOL.search(action)")
        a('            worked = (step.observation or "").lower().startswith("you ")')
    if g["tools"] == "worked":
        a("            # Only a use the observation confirms: a broken tool's attempt is no evidence.")
        a("            if tool and worked:")
        a('                for c in {ctx, "*"}:')
        a("                    self.tools[c][tool.group(1)][tool.group(2)] += 1")
    elif g["tools"]:
        a("            if tool:")
        a('                for c in {ctx, "*"}:')
        a("                    self.tools[c][tool.group(1)][tool.group(2)] += 1")
    if g["failures"]:
        a("            if tool and not worked:  # a mistake worth remembering")
        a('                for c in {ctx, "*"}:')
        a("                    self.failed[c][tool.group(1)][tool.group(2)] += 1")
        a("            # A visit shows a broken tool's sign: a mistake learnt without making it.")
        a('            for place in _SIGN.findall((step.observation or "").lower()):')
        a("                verb = _TOOL_VERB.get(place.split()[0])")
        a("                if verb:")
        a('                    for c in {ctx, "*"}:')
        a("                        self.failed[c][verb][place] += 1")
    if g["evidence"] == "seen" or g["negatives"]:
        a("            seen = _sighting(step.observation)")
        a("            if seen is not None:")
        if g["evidence"] == "seen":
            a("                place, kinds = seen")
            a("                for kind in set(kinds):")
            a("                    self._add(ctx, kind, place)")
        if g["negatives"]:
            a("                checked.append(seen)")
    if g["negatives"]:
        a("        # The goal's object kind is the goal word that was taken (or seen) somewhere.")
        a("        targets = (goal_words & taken) or (goal_words & set(self.totals))")
        a("        for place, kinds in checked:")
        a("            for kind in targets - set(kinds):")
        a('                for c in {ctx, "*"}:')
        a("                    self.missing[c][kind][place] += 1")
    if g["example"]:
        a("        if episode.success:")
        a("            actions = [s.action for s in episode.steps if s.action]")
        a('            self.examples.append({"goal": episode.goal, "actions": actions[-12:]})')
    a("")
    a("    def _ranked(self, table: dict, ctx: str, kind: str) -> list[tuple[str, int]]:")
    if g["context"] == "house":
        a("        # This house kind's evidence only (houses differ); all houses' evidence")
        a("        # when this house kind has none yet.")
        a('        counts = table.get(ctx, {}).get(kind) or table.get("*", {}).get(kind) or {}')
    else:
        a("        counts = table.get(ctx, {}).get(kind) or {}")
    if g["rank"] == "count":
        a("        # Most frequent first; ties go to the most recently confirmed place.")
        a("        return sorted(counts.items(),")
        a("                      key=lambda kv: (-kv[1], -self.last_seen.get((ctx, kind, kv[0]), 0), kv[0]))")
    else:
        a("        # Most recently confirmed first (layouts may drift); count breaks ties.")
        a("        return sorted(counts.items(),")
        a("                      key=lambda kv: (-self.last_seen.get((ctx, kind, kv[0]), 0), -kv[1], kv[0]))")
    if g["window"]:
        a("")
        a("    def _near(self, ctx: str, kind: str, day: int) -> list[tuple[str, int]]:")
        a("        # Places drift over time: places seen near the task's day come first (in any house:")
        a("        # a season can move a kind in every house; this house's sightings count double),")
        a("        # then the places seen at other times, as single sightings: stale counts must not")
        a("        # outweigh fresh ones.")
        a("        pooled = self._ranked(self.found, ctx, kind)")
        a("        near: dict = defaultdict(int)")
        a('        for c in dict.fromkeys((ctx, "*")):')
        a("            for d, place in self.dated.get(c, {}).get(kind, ()):")
        a(f"                if abs(d - day) <= {g['window']}:")
        a("                    near[place] += 1")
        a("        first = sorted(near.items(), key=lambda kv: (-kv[1], kv[0]))")
        a("        return first + [(p, 1) for p, _ in pooled if p not in near]")
    a("")
    a("    def retrieve(self, query: Query) -> str:")
    a(f"        ctx = {qctx_expr}")
    a('        goal = [w for w in _WORD.findall((query.goal or "").lower()) if w not in _STOP]')
    if bug == "key_error":
        a("        kinds = [w for w in goal if self.totals[w] > 0]")
    elif g["plurals"]:
        a("        # A plural goal word (two mugs, two knives, two potatoes) names its singular kind.")
        a("        kinds = []")
        a("        for w in goal:")
        a('            for kind in (w, w[:-1], w[:-2], w[:-3] + "fe"):')
        a("                if kind in self.totals:")
        a("                    kinds.append(kind)")
        a("                    break")
    else:
        a("        kinds = [w for w in goal if w in self.totals]")
    a("        lines: list[str] = []")
    a("        for kind in kinds:")
    fmt_found = 'f"{kind} found in {place} (x{n})"' if g["format"] == "counts" else 'f"{kind} was found in {place}"'
    found_expr = (
        "self._near(ctx, kind, _day(query.observation))" if g["window"] else "self._ranked(self.found, ctx, kind)"
    )
    a(f"            for place, n in {found_expr}[:{k}]:")
    a(f"                lines.append({fmt_found})")
    if g["negatives"]:
        a("            # Misses go after the hits: they prune the search, they do not direct it.")
        a(f"            for place, n in self._ranked(self.missing, ctx, kind)[:{k}]:")
        a('                lines.append(f"{kind} not found in {place} ({n} times)")')
    if g["tools"] or g["failures"]:
        a("        verbs = {_VERBS[w] for w in goal if w in _VERBS}")
        a("        for verb in sorted(verbs):")
    if g["tools"]:
        a("            # No object word on tool lines: they must not read as object locations.")
        a("            for place, n in self._ranked(self.tools, ctx, verb)[:1]:")
        a('                lines.append(f"{verb}: use {place} (x{n})")')
    if g["failures"]:
        a("            for place, n in self._ranked(self.failed, ctx, verb)[:3]:")
        a('                lines.append(f"{verb}: {place} failed (x{n})")')
    if g["example"]:
        a("        if self.examples:")
        a("            best = max(self.examples, key=lambda e: len(_words(e['goal']) & set(goal)))")
        a('            lines.append("example: " + "; ".join(best["actions"]))')
    if bug == "name_error":
        a(f'        text = _clip("\\n".join(lines), {g["char_budget"]})')
    else:
        a(f'        text = "\\n".join(lines)[:{g["char_budget"]}]')
    a("        return text")
    a("")
    a("    def snapshot(self) -> dict:")
    a("        top = {}")
    a("        for kind in sorted(self.totals, key=lambda k: -self.totals[k])[:40]:")
    a('            ranked = self._ranked(self.found, "*", kind)[:3]')
    a('            top[kind] = [f"{place} x{n}" for place, n in ranked]')
    a('        return {"episodes": self.n_episodes, "object_kinds": len(self.totals), "where_found": top}')
    return "\n".join(lines) + "\n"


def _episodes_class(g: Genome, bug: str | None) -> str:
    k = g["top_k"]
    lines: list[str] = []
    a = lines.append
    a('_TAKE = re.compile(r"\\btake ([a-z]+) \\d+ from")')
    a("")
    a("")
    a(f"class {class_name(g)}(MemoryDesign):")
    a('    """Episode-level retrieval; see the module docstring."""')
    a("")
    a("    def __init__(self, services: Services) -> None:")
    a("        super().__init__(services)")
    a("        self.items: list[dict] = []  # {goal, text, success, objects}")
    if bug == "key_error":
        a("        self.per_domain: dict[str, int] = {}  # episodes seen per domain")
    if g["similarity"] == "embed":
        a("        self.vectors: list[list[float] | None] = []  # embedding of each item's goal, computed once")
    a("")
    a("    def update(self, episode: Episode) -> None:")
    if bug == "key_error":
        a("        self.per_domain[episode.domain] += 1")
    if g["source"] == "success":
        a("        # Failed episodes are not kept: their actions are not a plan to copy.")
        a("        if not episode.success:")
        a("            return")
    if g["store"] == "trajectory":
        a("        lines = [f\"Task: {episode.goal}\", f\"Outcome: {'success' if episode.success else 'failure'}\"]")
        a("        for step in episode.steps:")
        a('            lines.append(f"> {step.action}")')
        a("            lines.append(step.observation.strip())")
    else:
        a("        # Only the actions: observations are long and mostly about other objects.")
        a("        lines = [f\"Task: {episode.goal} ({'success' if episode.success else 'failure'})\"]")
        a('        lines += [f"> {step.action}" for step in episode.steps if step.action]')
    a("        objects = sorted({m for s in episode.steps for m in _TAKE.findall((s.action or '').lower())})")
    a('        self.items.append({"goal": episode.goal, "text": "\\n".join(lines),')
    a('                           "success": bool(episode.success), "objects": objects})')
    if g["similarity"] == "embed":
        a("        self.vectors.append(self._embed(episode.goal))")
        a("")
        a("    def _embed(self, text: str) -> list[float] | None:")
        a("        # Brokered and budgeted: may fail; callers fall back to word overlap.")
        a("        try:")
        a("            return [float(x) for x in self.services.embed([text])[0]]")
        a("        except Exception as exc:  # noqa: BLE001 - any service failure degrades gracefully")
        a('            self.services.log(f"embed failed, using word overlap: {exc}")')
        a("            return None")
        a("")
        a("    @staticmethod")
        a("    def _cosine(u: list[float], v: list[float]) -> float:")
        a("        dot = sum(x * y for x, y in zip(u, v))")
        a("        nu = math.sqrt(sum(x * x for x in u)) or 1.0")
        a("        nv = math.sqrt(sum(y * y for y in v)) or 1.0")
        a("        return dot / (nu * nv)")
    a("")
    a("    def retrieve(self, query: Query) -> str:")
    # The injected bugs sit on paths every validation run takes, so the
    # engine's repair loop really sees them (and fixes them).
    a("        goal = _tokens(query.goal)" if bug == "name_error" else "        goal = _words(query.goal)")
    a("        if not self.items:")
    a('            return ""')
    a("        candidates = list(range(len(self.items)))")
    if g["object_filter"]:
        a("        # Only episodes that picked up an object kind the goal names.")
        a('        same = [i for i in candidates if goal & set(self.items[i]["objects"])]')
        a("        candidates = same or candidates")
    if g["rank"] == "recency":
        a("        ranked = sorted(candidates, key=lambda i: (-i, 0))")
    else:
        if g["similarity"] == "embed":
            a("        qv = self._embed(query.goal)")
            a("")
            a("        def score(i: int) -> float:")
            a("            v = self.vectors[i]")
            a("            if qv is not None and v is not None:")
            a("                return self._cosine(qv, v)")
            a('            other = _words(self.items[i]["goal"])')
            a("            return len(goal & other) / (len(goal | other) or 1)")
        else:
            a("        def score(i: int) -> float:")
            a('            other = _words(self.items[i]["goal"])')
            a("            return len(goal & other) / (len(goal | other) or 1)")
        a("")
        a("        # Most similar first; successes before failures; newer before older.")
        a('        ranked = sorted(candidates, key=lambda i: (-score(i), not self.items[i]["success"], -i))')
    a(f'        chosen = [self.items[i]["text"] for i in ranked[:{k}]]')
    a(f'        return "\\n\\n".join(chosen)[:{g["char_budget"]}]')
    a("")
    a("    def snapshot(self) -> dict:")
    a("        return {")
    a('            "episodes": len(self.items),')
    a('            "successes": sum(1 for it in self.items if it["success"]),')
    a('            "recent_goals": [it["goal"] for it in self.items[-10:]],')
    a("        }")
    return "\n".join(lines) + "\n"


def _none_class() -> str:
    return '''class NoMemory(MemoryDesign):
    """Remembers nothing: the baseline every other design is normalised against."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)

    def update(self, episode: Episode) -> None:
        return None

    def retrieve(self, query: Query) -> str:
        return ""

    def snapshot(self) -> dict:
        return {}
'''


def render(g: Genome, title: str | None = None, lineage: str = "", bug: str | None = None) -> str:
    """The full module for genome ``g``. ``bug`` injects a realistic first-draft bug."""
    g = normalise(g)
    title = title or default_title(g)
    bullets = "\n".join(textwrap.fill(b, width=88, initial_indent="- ", subsequent_indent="  ") for b in describe(g))
    mech = json.dumps(g, indent=4).replace("true", "True").replace("false", "False")
    head = _HEADER.format(title=title, bullets=bullets, lineage=lineage or "seed", mechanisms=mech)
    if g["store"] == "none":
        body = _none_class()
    elif g["store"] == "facts":
        body = _FACTS_HELPERS.format() + "\n\n" + _facts_class(g, bug)
    else:
        body = _episodes_class(g, bug)
    # Drop imports this variant does not use, so the module reads cleanly.
    if "math." not in body:
        head = head.replace("import math\n", "")
    if "defaultdict(" not in body:
        head = head.replace("from collections import defaultdict\n", "")
    return head + "\n\n" + body
