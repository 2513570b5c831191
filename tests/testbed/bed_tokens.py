"""Signing keys of the emulated Google issuer: mints RS256 ID tokens, serves their JWKS and
verifies tokens the way AWS STS does for the built-in `accounts.google.com` provider.

Verification is written against `cryptography` directly (not a JWT library's convenience
decoder) so that every check, and the order in which STS applies them, is explicit here.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GOOGLE_ISSUER = "https://accounts.google.com"
# Google's tokens may carry the issuer without its scheme; STS accepts both for this provider.
ACCEPTED_ISSUERS = (GOOGLE_ISSUER, "accounts.google.com")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or any(c in text for c in "+/= \t\r\n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_to_b64url(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    """One RSA-2048 key with a Google-like 40-hex-digit key id."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public = self.private.public_key()
        self.kid = secrets.token_hex(20)

    def jwk(self) -> dict:
        numbers = self.public.public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _int_to_b64url(numbers.n),
            "e": _int_to_b64url(numbers.e),
        }

    def sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = (
            b64url_encode(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.private.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return signing_input + "." + b64url_encode(signature)


@dataclass
class TokenRejected(Exception):
    """A verification failure, carrying the STS error code and message it maps to."""

    code: str
    message: str


MALFORMED = (
    "The ID Token provided is not a valid JWT. "
    "(You may see this error if you sent an Access Token)"
)


class KeyStore:
    """The published key (in the JWKS) and, created on first use, an unpublished one."""

    def __init__(self) -> None:
        self.published = SigningKey()
        self._unpublished: SigningKey | None = None
        self._lock = threading.Lock()

    def unpublished(self) -> SigningKey:
        with self._lock:
            if self._unpublished is None:
                self._unpublished = SigningKey()
            return self._unpublished

    def jwks(self) -> dict:
        return {"keys": [self.published.jwk()]}

    def mint(self, claims: dict, unknown_key: bool = False) -> str:
        key = self.unpublished() if unknown_key else self.published
        return key.sign(claims)

    def verify(self, token: str, now: float | None = None) -> dict:
        """Return the claims of a token STS would accept, else raise TokenRejected.

        Order as STS applies it: shape, issuer (which provider), signature (that provider's
        keys), then expiry.
        """
        now = time.time() if now is None else now
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3:
            raise TokenRejected("InvalidIdentityToken", MALFORMED)
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise TokenRejected("InvalidIdentityToken", MALFORMED) from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenRejected("InvalidIdentityToken", MALFORMED)

        if header.get("alg") != "RS256":
            raise TokenRejected(
                "InvalidIdentityToken",
                "The web identity token is not signed with a supported algorithm (RS256).",
            )
        issuer = claims.get("iss")
        if issuer not in ACCEPTED_ISSUERS:
            shown = issuer if isinstance(issuer, str) else "(no iss claim)"
            raise TokenRejected(
                "InvalidIdentityToken",
                f"No OpenIDConnect provider found in your account for {shown[:256]}",
            )
        kid = header.get("kid")
        key = self.published if kid == self.published.kid else None
        if key is None:
            raise TokenRejected(
                "InvalidIdentityToken",
                "The web identity token signature could not be verified: "
                "its key id is not in the identity provider's JWKS.",
            )
        signing_input = (parts[0] + "." + parts[1]).encode("ascii")
        try:
            key.public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise TokenRejected(
                "InvalidIdentityToken",
                "The web identity token signature could not be verified.",
            ) from None

        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise TokenRejected(
                "InvalidIdentityToken", "The web identity token has no valid exp claim."
            )
        if int(now) >= exp:
            raise TokenRejected(
                "ExpiredTokenException",
                f"Token expired: current date/time {int(now)} must be before "
                f"the expiration date/time {int(exp)}",
            )
        return claims
