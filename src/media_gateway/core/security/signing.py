"""Signing keys and JWT signing: auth signs access tokens with these, tests sign with throwaway ones."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

SigningAlgorithm = Literal["RS256", "EdDSA"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: SigningAlgorithm
    private_key: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        return self._jwk(private=False)

    def private_jwk(self) -> dict[str, Any]:
        return self._jwk(private=True)

    def _jwk(self, *, private: bool) -> dict[str, Any]:
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            raw = RSAAlgorithm.to_jwk(key if private else key.public_key())
        else:
            raw = OKPAlgorithm.to_jwk(key if private else key.public_key())
        jwk: dict[str, Any] = json.loads(raw)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    @classmethod
    def from_private_jwk(cls, jwk: dict[str, Any]) -> SigningKey:
        alg: SigningAlgorithm = jwk["alg"]
        loader = RSAAlgorithm if alg == "RS256" else OKPAlgorithm
        key = loader.from_jwk(json.dumps(jwk))
        if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise ValueError("the JWK holds no private key")
        return cls(kid=jwk["kid"], alg=alg, private_key=key)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers={"kid": self.kid})


def generate_signing_key(alg: SigningAlgorithm = "RS256") -> SigningKey:
    private: PrivateKey
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid=uuid.uuid4().hex, alg=alg, private_key=private)


def jwks_document(keys: list[SigningKey]) -> dict[str, Any]:
    """The public JWK Set (RFC 7517) for `keys`: what /.well-known/jwks.json serves."""
    return {"keys": [key.public_jwk() for key in keys]}
