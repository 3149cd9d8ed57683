"""Lineage of a dataset version: its parents (recursively), and for each version the recipe, the
prompt set, the models and the judge templates it was made from. A policy, judge or parent that is
a trained model of the store (STORE/models, rlaif.store.models) is a node of its own, and
through it the dataset version it was trained on.

A parent that is not in this store (for example the base of a version pulled from the Hub) is
reported as missing, never an error; only the version asked for must exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.core.names import is_version_id
from rlaif.core.schema import content_hash
from rlaif.store.models import find_model, load_model_manifest
from rlaif.store.versions import load_manifest, versions_dir

MAX_DEPTH = 200


def version_origin(manifest: dict[str, Any]) -> dict[str, Any]:
    """What one version was made from, read from its manifest (older manifests lack `inputs`: prompts is None).

    >>> origin = version_origin({"id": "v-1", "recipe": {"name": "demo"}, "parents": []})
    >>> origin["recipe"]["name"], origin["prompts"], len(origin["recipe"]["sha256"])
    ('demo', None, 64)
    """
    recipe = manifest.get("recipe") or {}
    return {
        "id": manifest.get("id"),
        "name": manifest.get("name"),
        "created_at": manifest.get("created_at"),
        "recipe": {"name": recipe.get("name"), "sha256": content_hash(recipe) if recipe else None},
        "prompts": (manifest.get("inputs") or {}).get("prompts"),
        "decontaminated_against": (manifest.get("inputs") or {}).get("decontaminate"),
        "models": manifest.get("models") or {},
        "prompt_templates": manifest.get("prompt_templates") or {},
        "kept": (manifest.get("counts") or {}).get("kept"),
        "missing": False,
    }


def _manifest_or_none(store: str | Path, version_id: str) -> dict[str, Any] | None:
    """A parent's manifest, None when it is not in the store (an id that is no version id never is)."""
    if not is_version_id(version_id) or not (versions_dir(store) / version_id / "manifest.json").is_file():
        return None
    return load_manifest(store, version_id)  # a damaged one is a StoreError naming the file


def _node(store: str | Path, manifest: dict[str, Any], seen: set[str], depth: int) -> dict[str, Any]:
    node = {**version_origin(manifest), "kind": "dataset", "parents": []}
    seen.add(manifest["id"])
    for parent_id in manifest.get("parents") or []:
        node["parents"].append(_parent(store, parent_id, seen, depth))
    listed = set(manifest.get("parents") or [])
    for role, model_id in store_models_used(store, manifest):  # a trained model of the store as policy or judge
        if model_id not in listed:
            node["parents"].append(model_node(store, model_id, seen, depth + 1, role))
    return node


def _parent(store: str | Path, parent_id: str, seen: set[str], depth: int) -> dict[str, Any]:
    """A parent: a dataset version of the store, a trained model of the store, or a missing one."""
    parent = _manifest_or_none(store, parent_id)
    if parent is None and _model_or_none(store, parent_id) is not None:
        return model_node(store, parent_id, seen, depth + 1)
    if parent is None:
        return {
            "id": parent_id,
            "missing": True,
            "parents": [],
            "note": f"not in {store}: pull it into this store to see its lineage",
        }
    if parent_id in seen or depth >= MAX_DEPTH:  # a shared ancestor is expanded once
        return {**version_origin(parent), "kind": "dataset", "parents": [], "shown_above": True}
    return _node(store, parent, seen, depth + 1)


def store_models_used(store: str | Path, manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, model id) of each policy, judge and jury member of a version whose model is a trained model of the store."""
    models = manifest.get("models") or {}
    used = [(f"policy '{p.get('name')}'", p.get("model")) for p in models.get("policies") or [] if isinstance(p, dict)]
    used.append(("judge", (models.get("judge") or {}).get("model")))
    judge = (manifest.get("recipe") or {}).get("judge") or {}
    used += [
        (f"jury member {n}", m.get("model")) for n, m in enumerate(judge.get("jury") or []) if isinstance(m, dict)
    ]
    return [
        (role, model_id)
        for role, model_id in used
        if is_version_id(model_id) and _model_or_none(store, model_id) is not None
    ]


def _model_or_none(store: str | Path, model_id: str):
    return find_model(store, model_id)


def model_origin(manifest: dict[str, Any]) -> dict[str, Any]:
    """What one trained model is, read from its manifest."""
    return {
        "kind": "model",
        "id": manifest.get("id"),
        "created_at": manifest.get("created_at"),
        "algorithm": manifest.get("algorithm"),
        "base_model": manifest.get("base_model"),
        "weights": manifest.get("weights"),
        "dataset": (manifest.get("dataset") or {}).get("id"),
        "steps": manifest.get("steps"),
        "missing": False,
    }


def model_node(
    store: str | Path, model_id: str, seen: set[str], depth: int, role: str | None = None
) -> dict[str, Any]:
    """A trained model and what it came from: its dataset version (with its lineage) and a base model of the store."""
    manifest = load_model_manifest(store, model_id)  # a damaged one is a StoreError naming the file
    node = {**model_origin(manifest), "role": role, "parents": []}
    if model_id in seen or depth >= MAX_DEPTH:
        return {**node, "shown_above": True}
    seen.add(model_id)
    parents = list(manifest.get("parents") or [])
    dataset_id = node["dataset"]
    if dataset_id and dataset_id not in parents:
        parents.insert(0, dataset_id)
    for parent_id in parents:
        node["parents"].append(_parent(store, parent_id, seen, depth))
    return node


def lineage(store: str | Path, version_id: str) -> dict[str, Any]:
    """The version and its ancestors as a tree: each node is `version_origin` plus `parents` (nodes)."""
    return _node(store, load_manifest(store, version_id), set(), 0)


def _short(sha: str | None) -> str:
    return (sha or "?")[:12]


def _label(node: dict[str, Any]) -> str:
    from rich.markup import escape

    if node.get("missing"):
        return f"[red]{escape(node['id'])}[/] (missing: {escape(node['note'])})"
    if node.get("kind") == "model":
        role = f" ({escape(node['role'])})" if node.get("role") else ""
        text = f"[bold]model {escape(str(node['id']))}[/]{role}  {escape(str(node['algorithm']))} of {escape(str(node['base_model']))}, created {escape(str(node['created_at']))}"
        return text + (
            " (ancestors shown above)"
            if node.get("shown_above")
            else f"\ntrained on {escape(str(node['dataset']))}, {node['steps']} steps, {node['weights']}"
        )
    recipe = node["recipe"]
    text = f"[bold]{escape(str(node['id']))}[/]  created {escape(str(node['created_at']))}, kept {node['kept']}"
    if node.get("shown_above"):
        return text + " (ancestors shown above)"
    return text + f"\nrecipe {escape(str(recipe['name']))} (sha256 {_short(recipe['sha256'])})"


def prompts_origin(prompts: dict[str, Any] | None) -> str:
    """Where a version's prompts came from, in a line: a file and its sha256, a Hub dataset at a commit, a version.

    >>> prompts_origin({"path": "data/p.jsonl", "rows": 3, "sha256": "ab" * 32})
    'data/p.jsonl (3 rows, sha256 abababababab)'
    >>> prompts_origin({"hub": "org/set", "config": None, "split": "train", "revision": "main", "commit": "c0ffee" * 7, "rows": 5})
    'Hub dataset org/set, split train, at c0ffeec0ffee (main) (5 rows)'
    >>> prompts_origin({"version": "demo-0123456789ab", "rows": 2}), prompts_origin(None)
    ('version demo-0123456789ab (2 rows)', 'not recorded (older version)')
    """
    if not prompts:
        return "not recorded (older version)"
    rows = f" ({prompts.get('rows')} rows)"
    if prompts.get("hub"):
        config = f", config {prompts['config']}" if prompts.get("config") else ""
        at = f"{str(prompts.get('commit'))[:12]} ({prompts.get('revision')})"
        return f"Hub dataset {prompts['hub']}{config}, split {prompts.get('split')}, at {at}{rows}"
    if prompts.get("version"):
        return f"version {prompts['version']}{rows}"
    return f"{prompts.get('path')} ({prompts.get('rows')} rows, sha256 {_short(prompts.get('sha256'))})"


def as_tree(node: dict[str, Any], parent_tree=None):
    """The lineage as a rich Tree for the terminal (parents are branches of their child)."""
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(_label(node)) if parent_tree is None else parent_tree.add(_label(node))
    if not node.get("missing") and not node.get("shown_above") and node.get("kind") != "model":
        tree.add("prompts: " + escape(prompts_origin(node["prompts"])))
        evals = node.get("decontaminated_against")
        if evals:
            tree.add(f"decontaminated against: {escape(str(evals['path']))} (sha256 {_short(evals['sha256'])})")
        models = node["models"]
        policies = ", ".join(f"{p.get('name')}={p.get('model')}" for p in models.get("policies", []))
        tree.add(escape(f"models: policies {policies or '-'}; judge {(models.get('judge') or {}).get('model', '-')}"))
        for name, sha in node["prompt_templates"].items():
            tree.add(f"template {escape(name)} (sha256 {_short(sha)})")
    for parent in node["parents"]:
        as_tree(parent, tree)
    return tree


def model_lineage(store: str | Path, model_id: str) -> dict[str, Any]:
    """The model and what it came from as a tree: the dataset version (and its lineage), the base model."""
    load_model_manifest(store, model_id)  # the model asked for must exist and be readable
    return model_node(store, model_id, set(), 0)
