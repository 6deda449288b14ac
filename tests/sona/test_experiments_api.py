"""Experiments over HTTP: administration, stable assignment, conversions, metrics; and their use by
the personalization score and recommendations. Plus the embeddings API with LoRA adapters."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np

from tests.sona.conftest import ADMIN, SonaWorld


async def create(w: SonaWorld, **body: Any) -> dict[str, Any]:
    response = await w.client.post("/api/v1/experiments", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def set_status(w: SonaWorld, experiment_id: str, status: str) -> Any:
    return await w.client.patch(
        f"/api/v1/experiments/{experiment_id}", json={"status": status}, headers=ADMIN
    )


def z_test(x1: int, n1: int, x0: int, n0: int) -> float:
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return math.erfc(abs((x1 / n1 - x0 / n0) / se) / math.sqrt(2))


async def test_assignment_is_stable_honours_allocation_and_metrics_add_up(sona_world: SonaWorld) -> None:
    w = sona_world
    experiment = await create(
        w,
        key=f"ab-{uuid.uuid4().hex[:6]}",
        name="Row order",
        traffic_allocation=0.6,
        variants=[
            {"name": "control", "weight": 1},
            {"name": "treatment", "weight": 1, "config": {"rows": 3}},
        ],
    )
    assert experiment["status"] == "draft"
    assert [v["control"] for v in experiment["variants"]] == [True, False]
    eid = experiment["id"]
    assert (await set_status(w, eid, "running")).json()["status"] == "running"

    users = [w.user() for _ in range(60)]
    variants: dict[str, str | None] = {}
    for i, (user_id, headers) in enumerate(users):
        first = (await w.client.get(f"/api/v1/experiments/{eid}/assignment", headers=headers)).json()
        if i < 10:
            again = (await w.client.get(f"/api/v1/experiments/{eid}/assignment", headers=headers)).json()
            assert first == again
        assert first["in_experiment"] == (first["variant"] is not None)
        variants[str(user_id)] = first["variant"]
    inside = [v for v in variants.values() if v is not None]
    assert 0.35 * len(users) < len(inside) < 0.85 * len(users)
    assert {"control", "treatment"} == set(inside)

    # Converters: every treatment user, every third control user; values 2.0 and 1.0.
    converted = {"control": 0, "treatment": 0}
    values: dict[str, list[float]] = {"control": [], "treatment": []}
    for i, (user_id, headers) in enumerate(users):
        variant = variants[str(user_id)]
        if variant is None and i < 20:
            refused = await w.client.post(f"/api/v1/experiments/{eid}/conversions", json={}, headers=headers)
            assert refused.status_code == 409
        if variant is None:
            continue
        if variant == "treatment" or i % 3 == 0:
            value = 2.0 if variant == "treatment" else 1.0
            body = {"value": value, "idempotency_key": "order-1"}
            response = await w.client.post(
                f"/api/v1/experiments/{eid}/conversions", json=body, headers=headers
            )
            assert response.status_code == 201, response.text
            assert response.json() == {"recorded": True, "variant": variant}
            if i < 10:
                replay = await w.client.post(
                    f"/api/v1/experiments/{eid}/conversions", json=body, headers=headers
                )
                assert replay.json()["recorded"] is False
            converted[variant] += 1
            values[variant].append(value)

    metrics = (await w.client.get(f"/api/v1/experiments/{eid}/metrics", headers=ADMIN)).json()
    assert metrics["control"] == "control"
    by_name = {m["variant"]: m for m in metrics["variants"]}
    n = {name: sum(1 for v in inside if v == name) for name in ("control", "treatment")}
    for name in ("control", "treatment"):
        m = by_name[name]
        assert m["exposures"] == n[name]
        assert m["conversions"] == converted[name] == m["conversion_events"]
        assert m["rate"] == converted[name] / n[name]
        assert m["mean_value"] == sum(values[name]) / len(values[name])
    control, treatment = by_name["control"], by_name["treatment"]
    assert control["difference"] is None
    assert control["p_value"] is None
    assert math.isclose(treatment["difference"], treatment["rate"] - control["rate"])
    expected_p = z_test(converted["treatment"], n["treatment"], converted["control"], n["control"])
    assert math.isclose(treatment["p_value"], expected_p, rel_tol=1e-9)
    assert treatment["p_value"] < 0.05  # 100% vs about 33%

    # Lifecycle: paused stops conversions, completed is final.
    assert (await set_status(w, eid, "paused")).json()["status"] == "paused"
    user_id, headers = next((u, h) for u, h in users if variants[str(u)] is not None)
    paused = await w.client.post(f"/api/v1/experiments/{eid}/conversions", json={}, headers=headers)
    assert paused.status_code == 409
    assert (await set_status(w, eid, "completed")).json()["status"] == "completed"
    reopened = await set_status(w, eid, "running")
    assert reopened.status_code == 409
    assert reopened.headers["content-type"] == "application/problem+json"


async def test_experiment_administration_needs_admin(sona_world: SonaWorld) -> None:
    w = sona_world
    _, user = w.user()
    body = {"key": "k", "name": "n", "variants": [{"name": "a"}, {"name": "b"}]}
    assert (await w.client.post("/api/v1/experiments", json=body, headers=user)).status_code == 403
    assert (await w.client.get("/api/v1/experiments", headers=user)).status_code == 403
    assert (await w.client.get("/api/v1/experiments")).status_code == 401
    assert (await w.client.post("/api/v1/admin/sona/train", headers=user)).status_code == 403
    # Administration is for operators and automation: a user token is refused even with the scope.
    user_admin = {"Authorization": f"Bearer {w.issuer.mint(uuid.uuid4(), scopes='openid admin')}"}
    assert (await w.client.post("/api/v1/experiments", json=body, headers=user_admin)).status_code == 403
    admin_scope = {"Authorization": f"Bearer {w.issuer.mint_client('ops-console', scopes='admin')}"}
    created = await w.client.post("/api/v1/experiments", json=body, headers=admin_scope)
    assert created.status_code == 201
    listed = await w.client.get("/api/v1/experiments", params={"status": "draft"}, headers=admin_scope)
    assert created.json()["id"] in [e["id"] for e in listed.json()["experiments"]]
    got = await w.client.get(f"/api/v1/experiments/{created.json()['id']}", headers=admin_scope)
    assert got.json() == created.json()
    assert (await w.client.get(f"/api/v1/experiments/{uuid.uuid4()}", headers=ADMIN)).status_code == 404
    for bad in (
        {"key": "k", "name": "n", "variants": [{"name": "a"}]},
        {"key": "k", "name": "n", "variants": [{"name": "a"}, {"name": "a"}]},
        {"key": "k", "name": "n", "variants": [{"name": "a", "weight": 0}, {"name": "b"}]},
        {"key": "k", "name": "n", "traffic_allocation": 1.5, "variants": [{"name": "a"}, {"name": "b"}]},
        {"key": "bad key!", "name": "n", "variants": [{"name": "a"}, {"name": "b"}]},
    ):
        response = await w.client.post("/api/v1/experiments", json=bad, headers=ADMIN)
        assert response.status_code == 422, bad
    bad_status = await w.client.patch(
        f"/api/v1/experiments/{created.json()['id']}", json={"status": "archived"}, headers=ADMIN
    )
    assert bad_status.status_code == 422


async def test_search_personalization_experiment_sets_the_weight_discovery_uses(
    sona_world: SonaWorld,
) -> None:
    w = sona_world
    weights = {"control": 0.0, "low": 0.15, "medium": 0.25, "high": 0.40}
    experiment = await create(
        w,
        key="search_personalization",
        name="Search personalization weight",
        variants=[{"name": name, "config": {"weight": weight}} for name, weight in weights.items()],
    )
    duplicate = await create(
        w, key="search_personalization", name="twin", variants=[{"name": "a"}, {"name": "b"}]
    )
    assert (await set_status(w, experiment["id"], "running")).status_code == 200
    # One running experiment per key.
    clash = await set_status(w, duplicate["id"], "running")
    assert clash.status_code == 409
    try:
        seen = set()
        for _ in range(12):
            _, headers = w.user()
            score = await w.client.post(
                "/api/v1/personalization/score", json={"content_ids": [w.ids["A"]]}, headers=headers
            )
            body = score.json()
            assignment = (
                await w.client.get(f"/api/v1/experiments/{experiment['id']}/assignment", headers=headers)
            ).json()
            assert body["experiment"] == {"id": experiment["id"], "variant": assignment["variant"]}
            assert body["weight"] == weights[assignment["variant"]]
            seen.add(assignment["variant"])
        assert len(seen) >= 2
        metrics = (
            await w.client.get(f"/api/v1/experiments/{experiment['id']}/metrics", headers=ADMIN)
        ).json()
        assert sum(m["exposures"] for m in metrics["variants"]) == 12
    finally:
        await set_status(w, experiment["id"], "completed")
    _, headers = w.user()
    after = await w.client.post(
        "/api/v1/personalization/score", json={"content_ids": [w.ids["A"]]}, headers=headers
    )
    assert after.json()["weight"] is None
    assert after.json()["experiment"] is None


async def test_recommendations_report_their_experiment_variant(sona_world: SonaWorld) -> None:
    w = sona_world
    experiment = await create(
        w,
        key="recommendations",
        name="Less diversity",
        variants=[{"name": "control"}, {"name": "focused", "config": {"mmr_lambda": 1.0}}],
    )
    await set_status(w, experiment["id"], "running")
    try:
        _, headers = w.user()
        found = await w.recommend(headers, limit=3)
        assignment = (
            await w.client.get(f"/api/v1/experiments/{experiment['id']}/assignment", headers=headers)
        ).json()
        assert found["experiment"] == {
            "id": experiment["id"],
            "key": "recommendations",
            "variant": assignment["variant"],
        }
    finally:
        await set_status(w, experiment["id"], "completed")


async def test_lora_adapter_is_trained_versioned_and_personalizes_embeddings(sona_world: SonaWorld) -> None:
    w = sona_world
    _, headers = w.user()
    texts = ["a moonlit garden full of magic", "space pirates at war"]
    base = await w.client.post("/api/v1/embeddings", json={"texts": texts}, headers=headers)
    assert base.status_code == 200, base.text
    assert base.json()["dimension"] == 384
    assert base.json()["adapter"] is None
    base_vectors = np.array(base.json()["vectors"])
    assert np.allclose(np.linalg.norm(base_vectors, axis=1), 1.0, atol=1e-4)
    # No adapter yet: "personal" falls back to the base space.
    early = await w.client.post(
        "/api/v1/embeddings", json={"texts": texts, "adapter": "personal"}, headers=headers
    )
    assert early.json()["adapter"] is None
    assert np.allclose(np.array(early.json()["vectors"]), base_vectors, atol=1e-6)

    await w.send(
        headers, w.watched("M0"), w.watched("D1"), {"type": "rated", "content_id": w.ids["C"], "rating": 1}
    )
    report = await w.train()
    assert report["trained"] is True
    assert report["adapters_trained"] >= 1
    profile = (await w.client.get("/api/v1/profile", headers=headers)).json()
    adapter = profile["adapter"]
    assert adapter["rank"] == 8
    assert adapter["alpha"] == 16.0
    assert adapter["version"] == 1
    assert adapter["metrics"]["positives"] == 2.0
    assert adapter["metrics"]["negatives"] == 1.0

    personal = await w.client.post(
        "/api/v1/embeddings", json={"texts": texts, "adapter": "personal"}, headers=headers
    )
    vectors = np.array(personal.json()["vectors"])
    assert personal.json()["adapter"]["id"] == adapter["id"]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(vectors, base_vectors, atol=1e-3)
    by_id = await w.client.post(
        "/api/v1/embeddings", json={"texts": texts, "adapter": adapter["id"]}, headers=headers
    )
    assert np.allclose(np.array(by_id.json()["vectors"]), vectors, atol=1e-6)

    # New events, new version; the old one stays addressable.
    await w.send(headers, w.watched("E"))
    await w.train()
    newer = (await w.client.get("/api/v1/profile", headers=headers)).json()["adapter"]
    assert newer["version"] == 2
    assert newer["id"] != adapter["id"]
    old = await w.client.post(
        "/api/v1/embeddings", json={"texts": texts, "adapter": adapter["id"]}, headers=headers
    )
    assert np.allclose(np.array(old.json()["vectors"]), vectors, atol=1e-6)

    # Someone else's adapter is not yours.
    _, stranger = w.user()
    foreign = await w.client.post(
        "/api/v1/embeddings", json={"texts": texts, "adapter": adapter["id"]}, headers=stranger
    )
    assert foreign.status_code == 404
