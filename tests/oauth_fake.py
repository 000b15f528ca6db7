"""A local fake OAuth2 provider (stdlib only): token (RFC 6749: refresh_token, authorization_code with PKCE,
device_code), device authorization (RFC 8628), authorize (redirects back with a code, as a consenting user's
browser would be) and token introspection (RFC 7662, which the OAuth2 Dovecot asks about each login).

Its state is what a provider knows: clients, grants (refresh tokens, revocable), access tokens with lifetimes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "helpdesk-test-client"
CLIENT_SECRET = "helpdesk-test-secret"


@dataclass
class Grant:
    user: str
    revoked: bool = False


class FakeProvider:
    """Serves on 127.0.0.1:`port` (0: any) in a daemon thread. `lifetime` is the access tokens' expires_in."""

    def __init__(self, port: int = 0, lifetime: int = 3600, rotate: bool = False) -> None:
        self.lifetime, self.rotate = lifetime, rotate
        self.grants: dict[str, Grant] = {}  # refresh token -> grant
        self.access: dict[str, tuple[str, float]] = {}  # access token -> (user, expires at)
        self.codes: dict[str, tuple[str, str, str]] = {}  # code -> (user, redirect_uri, code_challenge)
        self.devices: dict[str, dict] = {}  # device_code -> {"user_code", "user" once approved}
        self.consenting_user = ""  # who signs in at /authorize
        self.calls: list[tuple[str, dict[str, str]]] = []  # (path, form) of every POST
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the provider's admin or user does
    def add_grant(self, user: str) -> str:
        token = "rt-" + secrets.token_urlsafe(16)
        self.grants[token] = Grant(user)
        return token

    def revoke(self, refresh_token: str) -> None:
        """The user removed the app's access: the grant and its access tokens stop working."""
        grant = self.grants[refresh_token]
        grant.revoked = True
        with self._lock:
            self.access = {t: v for t, v in self.access.items() if v[0] != grant.user}

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access = {token: (user, 0.0) for token, (user, _) in self.access.items()}

    def approve_devices(self, user: str) -> int:
        """The user entered the code at the verification page and consented."""
        with self._lock:
            for device in self.devices.values():
                device["user"] = user
            return len(self.devices)

    def refreshes(self) -> int:
        return sum(1 for path, form in self.calls if path == "/token" and form.get("grant_type") == "refresh_token")

    # --- the endpoints
    def _issue(self, user: str, refresh_token: str | None) -> dict:
        access = "at-" + secrets.token_urlsafe(16)
        with self._lock:
            self.access[access] = (user, time.time() + self.lifetime)
        answer = {"access_token": access, "token_type": "Bearer", "expires_in": self.lifetime}
        if refresh_token:
            answer["refresh_token"] = refresh_token
        return answer

    def token(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client", "error_description": "unknown client or wrong secret"}
        kind = form.get("grant_type")
        if kind == "refresh_token":
            grant = self.grants.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            rotated = None
            if self.rotate:
                rotated = self.add_grant(grant.user)
                del self.grants[form["refresh_token"]]
            return 200, self._issue(grant.user, rotated)
        if kind == "authorization_code":
            user, redirect_uri, challenge = self.codes.pop(form.get("code", ""), ("", "", ""))
            verifier = form.get("code_verifier", "").encode()
            expected = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if not user or redirect_uri != form.get("redirect_uri") or expected != challenge:
                return 400, {"error": "invalid_grant", "error_description": "bad code, redirect_uri or verifier"}
            return 200, self._issue(user, self.add_grant(user))
        if kind == "urn:ietf:params:oauth:grant-type:device_code":
            device = self.devices.get(form.get("device_code", ""))
            if device is None:
                return 400, {"error": "expired_token"}
            if "user" not in device:
                return 400, {"error": "authorization_pending"}
            del self.devices[form["device_code"]]
            return 200, self._issue(device["user"], self.add_grant(device["user"]))
        return 400, {"error": "unsupported_grant_type"}

    def device(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("client_id") != CLIENT_ID:
            return 400, {"error": "invalid_client"}
        code, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
        with self._lock:
            self.devices[code] = {"user_code": user_code}
        return 200, {
            "device_code": code,
            "user_code": user_code,
            "verification_uri": f"{self.url}/device",
            "expires_in": 900,
            "interval": 1,
        }

    def introspect(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            user, expires = self.access.get(form.get("token", ""), ("", 0.0))
        if not user or expires <= time.time():
            return 200, {"active": False}
        return 200, {"active": True, "username": user, "exp": int(expires)}

    def authorize(self, query: dict[str, str]) -> str:
        """Where the consenting user's browser is sent next: back to redirect_uri with a code (or an error)."""
        redirect = query["redirect_uri"]
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            answer = {"error": "invalid_request", "state": query.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = (self.consenting_user, redirect, query["code_challenge"])
            answer = {"code": code, "state": query.get("state", "")}
        return redirect + "?" + urllib.parse.urlencode(answer)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                fake.calls.append((self.path, form))
                routes = {"/token": fake.token, "/device": fake.device, "/introspect": fake.introspect}
                status, answer = routes[self.path](form) if self.path in routes else (404, {"error": "not_found"})
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                if parts.path != "/authorize":
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(302)
                self.send_header("Location", fake.authorize(dict(urllib.parse.parse_qsl(parts.query))))
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler
