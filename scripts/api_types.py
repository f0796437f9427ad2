"""Generate `client_web/src/api.gen.ts` from the server's OpenAPI document (`make api-types`).

`--check` regenerates into a temporary file and fails (exit 1, with a diff) when the committed file
differs, so `make test` catches a client whose types drifted from the server (tests/web/test_api_types.py).
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client_web"
TARGET = CLIENT / "src" / "api.gen.ts"
GENERATOR = CLIENT / "node_modules" / ".bin" / "openapi-typescript"
HEADER = "// Generated from the server's OpenAPI document by `make api-types`; do not edit by hand.\n"


def generate() -> str:
    sys.path.insert(0, str(ROOT))
    from server.app import openapi_document

    if not GENERATOR.exists():
        raise SystemExit(f"{GENERATOR} is missing: run `npm ci` in client_web first")
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "openapi.json", Path(tmp) / "api.gen.ts"
        spec.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True), encoding="utf-8")
        subprocess.run([str(GENERATOR), str(spec), "-o", str(out)], check=True, capture_output=True)  # noqa: S603  # fixed argv
        return HEADER + out.read_text(encoding="utf-8")


def main(argv: list[str]) -> int:
    generated = generate()
    if "--check" not in argv:
        TARGET.write_text(generated, encoding="utf-8")
        return 0
    committed = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if committed == generated:
        return 0
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True), generated.splitlines(keepends=True), "committed", "from the server"
    )
    sys.stdout.writelines(list(diff)[:200])
    print(f"\n{TARGET.relative_to(ROOT)} differs from the server's OpenAPI document: run `make api-types`.")
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
