"""Keep the store (the archive) and the lineage (git) in agreement; repair what can be.

Run on every start of a search, with the engine lock held (so no other alma-tui
process writes to the repo), and by ``alma-tui repair``. The store is the source of
truth for a design it holds (its code is what was evaluated); the lineage is the
source for designs the store lost (``repair`` rebuilds them from each tag's
``design.json``, ``design.py`` and ``ANALYSIS.md``).

* stale ``*.lock`` files under ``.git`` (left by a killed process): removed, named;
* an accepted design whose ``design/<id>`` tag is missing: committed again on its
  parent's commit (this also recreates a lineage whose ``.git`` was deleted);
* a tag whose ``design.py`` or parent differs from the store's design, or a tag of a
  design the store holds as not accepted: moved to ``refs/alma/orphaned/<id>-<sha8>``
  (kept, never deleted) and the design committed again from the store;
* an empty store over a lineage holding designs, or tags the store does not know:
  refused (``ArchiveMismatch``) during a search; ``repair`` imports them.

Every action is returned as one line naming what was done.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from alma_tui.lineage import CommitInfo, Lineage
from alma_tui.store.models import Design, Run

# the settings that define a score; recorded in design.json so `repair` can restore them
SCORE_SETTINGS = ("eval", "seed", "selection", "params")


class ArchiveMismatch(Exception):
    """The store and the lineage disagree in a way a search must not paper over (one line)."""


def commit_info(d: Design, run: Run | None) -> CommitInfo:
    """What goes into a design's commit: code, design.json, ANALYSIS.md, message and trailers."""
    domain = run.domain if run else ""
    agent_model = run.agent_model if run else ""
    meta_model = run.meta_model if run else ""
    analysis_md = "(built-in seed design; no analysis)"
    rationale = "Built-in design evaluated as a seed of the archive." if d.origin == "builtin" else ""
    if d.analysis_json:
        from alma_tui.engine.meta_agent import Analysis

        a = Analysis.model_validate_json(d.analysis_json)
        analysis_md = a.to_markdown()
        rationale = a.top_suggestion() or rationale
    elif d.analysis_raw and d.origin != "builtin":
        analysis_md = d.analysis_raw  # restored by `repair` from an ANALYSIS.md
    offline = "offline" in meta_model or "offline" in agent_model
    meta: dict[str, Any] = {
        "id": d.id,
        "parent": d.parent_id,
        "parents": [p for p in (d.parent_id, d.second_parent_id) if p],
        "title": d.title,
        "score": d.score,
        "score_se": d.score_se,
        "run_scores": json.loads(d.run_scores_json or "[]"),
        "domain": domain,
        "agent_model": agent_model,
        "meta_model": meta_model,
        "iteration": d.iteration,
        "origin": d.origin,
        "repairs": d.repairs,
        "offline_models": offline,
        "created_at": d.created_at,
        "finished_at": d.finished_at,
    }
    try:
        settings = json.loads(run.settings_json) if run else {}
    except ValueError:
        settings = {}
    if settings:
        meta["settings"] = {k: settings[k] for k in SCORE_SETTINGS if k in settings}
    trailers = {
        "Design-Id": d.id,
        "Parent-Design": d.parent_id or "none",
        **({"Second-Parent-Design": d.second_parent_id} if d.second_parent_id else {}),
        "Score": f"{d.score:.4f}" if d.score is not None else "none",
        "Domain": domain,
        "Agent-Model": agent_model,
        "Meta-Model": meta_model,
    }
    return CommitInfo(d.id, d.parent_id, d.title, rationale or "(no rationale)", d.code, meta, analysis_md, trailers)


@contextlib.contextmanager
def engine_lock(repo: Path) -> Iterator[None]:
    """Hold the repo's engine lock (the one a search holds) for a repair."""
    path = Path(repo) / ".alma" / "engine.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ArchiveMismatch(
                f"a search is running in {repo}; stop it (`alma-tui stop --repo {repo}`) before a repair"
            ) from exc
        yield
    finally:
        os.close(fd)


def _seq_key(design_id: str) -> tuple[int, str]:
    digits = design_id.lstrip("d")
    return (int(digits) if digits.isdigit() else 10**9, design_id)


def reconcile(store: Any, lineage: Lineage, run: Run | None, *, rebuild: bool = False) -> list[str]:
    """Bring store and lineage into agreement; one line per action. ``rebuild`` (``alma-tui repair``)
    also imports designs only the lineage holds; without it those are refused."""
    repo = lineage.path
    actions = [
        f"removed a stale git lock file {p} (no alma-tui process was using {repo})"
        for p in lineage.remove_stale_locks()
    ]
    tags = lineage.design_tags()
    designs = {d.id: d for d in store.designs()}
    unknown = sorted((t for t in tags if t not in designs), key=_seq_key)
    if unknown and not rebuild:
        if not designs:
            raise ArchiveMismatch(
                f"the store is empty but the lineage holds {len(tags)} designs; rebuild the "
                f"archive with `alma-tui repair --repo {repo}`"
            )
        raise ArchiveMismatch(
            f"the lineage holds {len(unknown)} designs the store does not know "
            f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}); rebuild the "
            f"archive with `alma-tui repair --repo {repo}`"
        )
    if unknown:
        actions += _import(store, lineage, {t: tags[t] for t in unknown})
        designs = {d.id: d for d in store.designs()}
        run = store.get_run()
    accepted = sorted((d for d in designs.values() if d.status == "accepted"), key=lambda d: d.seq)
    if lineage.created and accepted:
        actions.append(
            f"the lineage repo {repo / '.git'} was missing; recreating it from the store "
            f"({len(accepted)} accepted designs)"
        )
    for did, d in sorted(designs.items()):
        if d.status != "accepted" and did in tags:
            ref = lineage.orphan_tag(did)
            actions.append(f"design/{did} tagged a design the store holds as {d.status}; moved the tag to {ref}")
            del tags[did]
    commits: dict[str, str] = {}
    for d in accepted:
        # a merge design's commit has both parents' commits (in order) as its git parents
        parent_commit = [commits[p] for p in (d.parent_id, d.second_parent_id) if p and p in commits]
        tag = tags.get(d.id)
        why = lineage.mismatch(tag, d.code, parent_commit) if tag is not None else None
        if why is not None:
            assert tag is not None
            ref = lineage.orphan_tag(d.id)
            actions.append(f"design/{d.id} ({tag[:8]}) has {why} than the store's {d.id}; kept it as {ref}")
            tag = None
        if tag is None and d.commit and lineage.matches_if_present(d.commit, d.code, parent_commit):
            lineage.retag(d.id, d.commit)  # the tag was lost, the commit is still there
            tag = d.commit
            actions.append(f"design/{d.id} was missing; tagged its commit {tag[:8]} again")
        if tag is None:
            sha = lineage.commit_design(commit_info(d, run), parent_commit)
            if not lineage.created:
                why = "its tag and commit were missing" if d.commit else "the engine stopped before committing it"
                actions.append(f"{d.id}: committed from the store as {sha[:8]} ({why})")
        else:
            sha = tag
            if d.commit and d.commit != sha:
                actions.append(f"{d.id}: the store's commit id {d.commit[:8]} was not design/{d.id}; now {sha[:8]}")
        if d.commit != sha:
            store.update_design(d.id, commit=sha)
        commits[d.id] = sha
    return actions


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _import(store: Any, lineage: Lineage, tags: dict[str, str]) -> list[str]:
    """Designs only the lineage holds, into the store (``alma-tui repair``)."""
    from alma_tui.engine.config import SearchConfig

    actions = []
    run = store.get_run()
    metas = {}
    for did, sha in tags.items():
        text = lineage.read_file(sha, "design.json")
        try:
            metas[did] = json.loads(text) if text else {}
        except ValueError:
            metas[did] = {}
    first = metas[min(metas, key=_seq_key)]
    if run is None and first.get("settings"):
        cfg = SearchConfig.from_json(
            json.dumps(
                {
                    "domain": first.get("domain") or "household",
                    "agent_model": first.get("agent_model") or "offline/agent",
                    "meta_model": first.get("meta_model") or "offline/meta",
                    **first["settings"],
                }
            )
        )
        cfg.repo = lineage.path
        run = Run(
            domain=cfg.domain,
            meta_model=cfg.meta_model,
            agent_model=cfg.agent_model,
            selection=cfg.selection,
            seed=cfg.seed,
            settings_json=cfg.to_json(),
            status="stopped",
            status_detail="rebuilt from the lineage by `alma-tui repair`",
        )
        store.add(run)
        actions.append(
            f"restored the search settings from design/{min(metas, key=_seq_key)} "
            f"(domain {cfg.domain}, {cfg.meta_model} / {cfg.agent_model})"
        )
    elif run is None:
        actions.append(
            "the lineage does not record the evaluation settings; the next `alma-tui run` takes them "
            "from its flags (give the original --collection/--deployment/--runs)"
        )
    for did in sorted(tags, key=_seq_key):
        sha, meta = tags[did], metas[did]
        code = lineage.read_file(sha, "design.py")
        if code is None:
            actions.append(f"design/{did} ({sha[:8]}) has no design.py; skipped")
            continue
        seq = _seq_key(did)[0] if _seq_key(did)[0] < 10**9 else store.next_design_seq()
        parent = meta.get("parent")
        parents = lineage.parents_of(sha)
        by_commit = {c: p for p, c in lineage.design_tags().items()}
        if parent is None:
            parent = by_commit.get(parents[0]) if parents else None
        listed = meta.get("parents")
        second = (
            listed[1]
            if isinstance(listed, list) and len(listed) > 1
            else (by_commit.get(parents[1]) if len(parents) > 1 else None)
        )
        analysis = lineage.read_file(sha, "ANALYSIS.md")
        d = Design(
            id=did,
            run_id=run.id if run is not None and run.id is not None else 1,
            seq=seq,
            parent_id=parent,
            second_parent_id=second,
            iteration=int(meta.get("iteration") or 0),
            origin=str(meta.get("origin") or ("builtin" if parent is None else "meta")),
            title=str(meta.get("title") or did),
            code=code,
            status="accepted",
            score=meta.get("score"),
            score_se=meta.get("score_se"),
            run_scores_json=json.dumps(meta.get("run_scores") or []),
            repairs=int(meta.get("repairs") or 0),
            commit=sha,
            analysis_raw=analysis,
            created_at=_parse_time(meta.get("created_at")) or datetime.now().astimezone(),
            finished_at=_parse_time(meta.get("finished_at")),
        )
        store.add(d)
        score = f"score {d.score:.3f}" if isinstance(d.score, int | float) else "no score"
        actions.append(f"{did}: restored from design/{did} ({sha[:8]}), parent {parent or 'none'}, {score}")
    children: dict[str, int] = {}
    for d in store.designs():
        for p in (d.parent_id, d.second_parent_id):
            if p:
                children[p] = children.get(p, 0) + 1
    for did in tags:  # a parent is visited once per child (rejected children are lost: a lower bound)
        if children.get(did) and store.get_design(did) is not None:
            store.update_design(did, visits=children[did])
    if run is not None and run.id is not None:
        done = max((int(m.get("iteration") or 0) for m in metas.values()), default=0)
        nm = store.get_design("d001")
        store.update_run(
            run.id,
            iterations_done=max(run.iterations_done, done),
            no_memory_score=nm.score if nm is not None else run.no_memory_score,
        )
    actions.append("rejected designs, episodes and model calls are not kept in the lineage; they were not restored")
    return actions
