def test_home_and_admin_login_redirect(client):
    assert client.get("/").status_code == 200
    resp = client.get("/admin/")
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"]
