"""Patient pseudonyms for linking readmissions: HMAC-SHA-256 of the personal identity number.

The key lives in its own private key file (`settings.effective_pseudonym_key_file`, created once
with mode 0600 next to the KEK file); the database holds only the hash, never the number. Unlike
the KEKs this key is never rotated: a new key would unlink every earlier admission.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from server.core import keyfiles
from server.core.errors import Problem
from server.messaging.pii import luhn_ok

_NUMBER = re.compile(r"^(\d{2})?(\d{6})[-+]?(\d{4})$")


class Pseudonyms:
    def __init__(self, path: Path) -> None:
        self._key = keyfiles.secret(path)

    def patient_key(self, personal_number: str) -> str:
        """The keyed hash of a personnummer or samordningsnummer (10 or 12 digits, with or without '-')."""
        match = _NUMBER.match(personal_number.strip().replace(" ", ""))
        if match is None or not luhn_ok(match.group(2) + match.group(3)):
            raise Problem(
                "personal_number_invalid",
                "The personal identity number is not valid; give it as YYYYMMDD-NNNN or leave the field empty.",
                status=422,
            )
        return hmac.new(self._key, (match.group(2) + match.group(3)).encode(), hashlib.sha256).hexdigest()
