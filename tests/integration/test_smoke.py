from litestar.testing import AsyncTestClient


async def test_health_and_openapi(client: AsyncTestClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert r.json()["openapi"].startswith("3.1")
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/not-found")
    assert r.headers["x-content-type-options"] == "nosniff"
