"""The provider's OAuth2 endpoints: refresh (RFC 6749 6), code exchange with PKCE (RFC 7636), device flow (RFC 8628).

oauthlib builds the request bodies and parses the answers (its error classes carry the provider's `error` and
`error_description`); requests carries them. Nothing here logs or formats a token.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import requests
from oauthlib.common import add_params_to_uri
from oauthlib.oauth2 import DeviceClient, OAuth2Error, WebApplicationClient

DEFAULT_LIFETIME_SECONDS = 3600  # when a provider leaves out expires_in
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True)
class OAuthClient:
    """Who we are to the provider (OAUTH_* settings)."""

    token_url: str
    client_id: str
    client_secret: str = ""
    scope: str = ""

    def secret(self) -> dict[str, str]:
        return {"client_secret": self.client_secret} if self.client_secret else {}


@dataclass(frozen=True)
class TokenGrant:
    """A fresh access token, when it expires (time.time()), and a rotated refresh token if the provider sent one."""

    access_token: str = field(repr=False)  # tokens never reach a log through repr()
    expires_at: float = 0.0
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DeviceAuthorization:
    """What the device-code flow shows the admin, and the code it polls with."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    interval: float
    expires_at: float
    message: str = ""


class GrantError(Exception):
    """The provider refused the grant: `error` is its code (invalid_grant, invalid_client, ...)."""

    def __init__(self, error: str, description: str = "") -> None:
        self.error, self.description = error, " ".join((description or "").split())[:300]
        super().__init__(f"{error}: {self.description}" if self.description else error)

    @property
    def state(self) -> str:
        """ok/expired/revoked/error as models.oauth records it: invalid_grant means re-authorize."""
        if self.error != "invalid_grant":
            return "error"
        text = self.description.lower()
        return "expired" if "expired" in text and "revoked" not in text else "revoked"


class EndpointUnavailable(Exception):
    """The endpoint could not be reached or answered with a server error: try again later."""


def _post(url: str, body: str, timeout: float) -> Any:
    """POST a form; the parsed JSON answer, or GrantError for an OAuth error answer."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise EndpointUnavailable(f"{url}: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise EndpointUnavailable(f"{url}: HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise EndpointUnavailable(f"{url}: HTTP {response.status_code}, not JSON") from None
    if not isinstance(answer, dict):
        raise EndpointUnavailable(f"{url}: HTTP {response.status_code}, not a JSON object")
    if "error" in answer:
        raise GrantError(str(answer["error"]), str(answer.get("error_description") or ""))
    return answer


def _token(client: Any, url: str, body: str, timeout: float) -> TokenGrant:
    answer = _post(url, body, timeout)
    try:
        token = client.parse_request_body_response(json.dumps(answer))  # scope=None: a changed scope is fine
    except OAuth2Error as exc:  # e.g. no access_token in the answer
        raise GrantError(exc.error, exc.description or "") from None
    lifetime = float(token.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
    return TokenGrant(
        access_token=str(token["access_token"]),
        expires_at=time.time() + lifetime,
        refresh_token=token.get("refresh_token") or None,
    )


def refresh(client: OAuthClient, refresh_token: str, timeout: float = 30.0) -> TokenGrant:
    """A new access token from the refresh token (the answer may rotate the refresh token)."""
    oauth = WebApplicationClient(client.client_id)
    body = oauth.prepare_refresh_body(
        refresh_token=refresh_token, scope=client.scope or None, client_id=client.client_id, **client.secret()
    )
    return _token(oauth, client.token_url, body, timeout)


def exchange_code(
    client: OAuthClient, code: str, redirect_uri: str, code_verifier: str, timeout: float = 30.0
) -> TokenGrant:
    """Tokens for the authorization code that came back to our loopback redirect (PKCE verifier included)."""
    oauth = WebApplicationClient(client.client_id)
    body = oauth.prepare_request_body(
        code=code, redirect_uri=redirect_uri, code_verifier=code_verifier, include_client_id=True, **client.secret()
    )
    return _token(oauth, client.token_url, body, timeout)


def authorization_url(client: OAuthClient, authorize_url: str, redirect_uri: str, state: str) -> tuple[str, str]:
    """The URL the admin opens in a browser (RFC 6749 4.1.1 with PKCE S256), and the code verifier for it."""
    oauth = WebApplicationClient(client.client_id)
    verifier = oauth.create_code_verifier(64)
    params = [
        ("response_type", "code"),
        ("client_id", client.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", client.scope),
        ("state", state),
        ("code_challenge", oauth.create_code_challenge(verifier, "S256")),
        ("code_challenge_method", "S256"),
        ("access_type", "offline"),  # Google: issue a refresh token ...
        ("prompt", "consent"),  # ... every time, not only at the first consent
    ]
    return add_params_to_uri(authorize_url, [(key, value) for key, value in params if value]), verifier


def start_device_flow(client: OAuthClient, device_url: str, timeout: float = 30.0) -> DeviceAuthorization:
    """Ask for a user code (RFC 8628 3.1); the admin enters it at the verification URI."""
    body = urllib.parse.urlencode({"client_id": client.client_id, **({"scope": client.scope} if client.scope else {})})
    answer = _post(device_url, body, timeout)
    try:
        return DeviceAuthorization(
            device_code=str(answer["device_code"]),
            user_code=str(answer["user_code"]),
            verification_uri=str(answer.get("verification_uri") or answer["verification_url"]),  # Google: _url
            interval=float(answer.get("interval") or 5),
            expires_at=time.time() + float(answer.get("expires_in") or 900),
            message=str(answer.get("message") or ""),
        )
    except (KeyError, ValueError):
        raise GrantError("invalid_response", "the device authorization answer lacks device_code or user_code") from None


def poll_device_flow(client: OAuthClient, device: DeviceAuthorization, timeout: float = 30.0) -> TokenGrant | None:
    """One poll of the token endpoint (RFC 8628 3.4): tokens, or None while the admin has not finished yet.

    Raises GrantError("slow_down") when asked to poll less often; the caller adds 5 s to its interval.
    """
    oauth = DeviceClient(client.client_id)
    body = oauth.prepare_request_body(device.device_code, include_client_id=True, **client.secret())
    try:
        return _token(oauth, client.token_url, body, timeout)
    except GrantError as exc:
        if exc.error == "authorization_pending":
            return None
        raise
