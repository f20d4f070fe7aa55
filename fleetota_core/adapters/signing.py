"""KMS signing with one of the stack's asymmetric keys (ECC_NIST_P256, ECDSA_SHA_256).

One instance per key role: the image key signs release manifests, the director key job documents.
"""

from __future__ import annotations

import base64
from typing import Any

from fleetota_core.adapters.aws_errors import reading
from fleetota_core.domain.firmware import MAX_SIGNED_BYTES, SIGNING_ALGORITHM
from fleetota_core.errors import ValidationError


class KmsSigner:
    def __init__(self, kms: Any, key_alias: str) -> None:
        self.kms = kms
        self.key_alias = key_alias
        self._public_der: bytes | None = None

    def sign(self, payload: bytes) -> tuple[str, str]:
        """(base64 DER signature, key ARN) for ``payload``."""
        if len(payload) > MAX_SIGNED_BYTES:
            raise ValidationError(f"cannot sign {len(payload)} bytes; KMS signs at most {MAX_SIGNED_BYTES}")
        with reading(f"KMS key {self.key_alias}"):
            response = self.kms.sign(
                KeyId=self.key_alias, Message=payload, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
            )
        return base64.b64encode(response["Signature"]).decode(), response["KeyId"]

    def public_key_der(self) -> bytes:
        """The public half (DER SubjectPublicKeyInfo) that vehicles pin; fetched once per instance."""
        if self._public_der is None:
            with reading(f"KMS key {self.key_alias}"):
                self._public_der = self.kms.get_public_key(KeyId=self.key_alias)["PublicKey"]
        return self._public_der
