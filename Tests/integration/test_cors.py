"""CORS on /token and /revoke for browser applications, through nginx: a client's allowed
origins are the origins of its registered redirect URIs; the metadata is public."""
import uuid

SPA = "https://spa.example.com"


def spa_client(stack):
    return stack.add_client("--name", "spa-" + uuid.uuid4().hex[:8], "--redirect-uri", SPA + "/callback",
                            "--grant-types", "client_credentials")


def test_preflight_for_a_registered_origin_allows_post_with_authorization(stack):
    spa_client(stack)
    r = stack.session().options(stack.url + "/token", headers={
        "Origin": SPA, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == SPA
    assert r.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert "Origin" in r.headers["Vary"]
    assert stack.session().options(stack.url + "/oauth2/revoke", headers={"Origin": SPA}).headers[
        "Access-Control-Allow-Origin"] == SPA


def test_preflight_for_an_unknown_origin_allows_nothing(stack):
    for origin in ("https://evil.example.com", "null", SPA + ":444"):
        r = stack.session().options(stack.url + "/token", headers={"Origin": origin,
                                                                  "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and "Access-Control-Allow-Origin" not in r.headers, origin


def test_token_response_is_readable_only_by_the_clients_own_origin(stack):
    c = spa_client(stack)
    other = stack.add_client("--name", "other-" + uuid.uuid4().hex[:8], "--redirect-uri", "https://other.example/cb",
                             "--grant-types", "client_credentials")
    auth = (c["client_id"], c["client_secret"])
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=auth, headers={"Origin": SPA})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == SPA
    token = r.json()["access_token"]
    # Errors too, so the page can read why (here: a wrong secret).
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], "x" * 28),
                   headers={"Origin": SPA})
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == SPA
    # Another client's origin, or an unregistered one, gets no CORS header.
    for origin in ("https://other.example", "https://evil.example.com"):
        r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=auth, headers={"Origin": origin})
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers, origin
    r = stack.post("/token", data={"grant_type": "client_credentials"}, auth=(other["client_id"], other["client_secret"]),
                   headers={"Origin": SPA})
    assert "Access-Control-Allow-Origin" not in r.headers
    r = stack.post("/revoke", data={"token": token}, auth=auth, headers={"Origin": SPA})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == SPA


def test_no_cors_on_introspection_and_public_metadata(stack):
    c = spa_client(stack)
    r = stack.post("/introspect", data={"token": "x"}, auth=(c["client_id"], c["client_secret"]), headers={"Origin": SPA})
    assert "Access-Control-Allow-Origin" not in r.headers
    r = stack.get("/.well-known/oauth-authorization-server", headers={"Origin": "https://anyone.example"})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
