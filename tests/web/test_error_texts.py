"""Item 11 of issue 16: every problem code the server can send has Swedish and English text in the client."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
I18N = ROOT / "client_web" / "src" / "i18n.ts"


def server_problem_codes() -> set[str]:
    """Every literal code given to Problem (or a subclass taking a code), plus the fixed codes of the others."""
    takes_code = {"Problem"}
    codes: set[str] = set()
    trees = [
        ast.parse(p.read_text(encoding="utf-8")) for base in ("server", "auth") for p in (ROOT / base).rglob("*.py")
    ]
    for tree in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "Problem" for b in node.bases)):
                continue
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if init is None or [a.arg for a in init.args.args[1:2]] == ["code"]:
                takes_code.add(node.name)
            for call in ast.walk(node):  # super().__init__("not_found", ...)
                if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "__init__" and call.args:
                    first = call.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        codes.add(first.value)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in takes_code and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    codes.add(first.value)
    return codes


def client_codes(language: str) -> set[str]:
    text = I18N.read_text(encoding="utf-8")
    start = text.index("const sv = {") if language == "sv" else text.index("const en: Texts = {")
    block = text[start : text.index("\n};", start)]
    return set(re.findall(r"^\s+problem_([a-z0-9_]+):", block, flags=re.MULTILINE))


def test_every_server_problem_code_has_swedish_and_english_text() -> None:
    codes = server_problem_codes()
    assert {"not_found", "forbidden", "validation_error", "personal_number_not_allowed"} <= codes
    for language in ("sv", "en"):
        missing = sorted(codes - client_codes(language))
        assert missing == [], f"client_web/src/i18n.ts lacks problem_<code> texts ({language}) for {missing}"
