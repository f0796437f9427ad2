"""Server-rendered pages of the built-in provider: Swedish first, English on request. No scripts, no inline styles."""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl, urlencode

TEXTS: dict[str, dict[str, str]] = {
    "sv": {
        "title": "Logga in",
        "lead": "Logga in med användarnamn, lösenord och engångskod från din autentiseringsapp.",
        "login": "Användarnamn",
        "password": "Lösenord",
        "code": "Engångskod (6 siffror)",
        "code_hint": "Första gången lämnar du fältet tomt; då får du koppla en autentiseringsapp.",
        "submit": "Logga in",
        "switch": "English",
        "bad_credentials": "Fel användarnamn eller lösenord.",
        "bad_totp": "Fel engångskod. Skriv in den kod som visas i din autentiseringsapp just nu och försök igen.",
        "totp_required": "Skriv in engångskoden från din autentiseringsapp.",
        "disabled": "Kontot är avstängt. Kontakta din administratör.",
        "expired": "Sidan hade gått ut. Försök igen.",
        "slow_down": "För många misslyckade inloggningar från din anslutning. Vänta några minuter och försök igen.",
        "enrol_title": "Koppla en autentiseringsapp",
        "enrol_lead": (
            "Inloggning kräver två faktorer. Skanna QR-koden med en autentiseringsapp "
            "(t.ex. FreeOTP, Google Authenticator eller Microsoft Authenticator) och skriv in koden den visar."
        ),
        "enrol_manual": "Kan du inte skanna? Ange nyckeln manuellt:",
        "enrol_submit": "Bekräfta och logga in",
        "enrol_bad": "Koden stämde inte. Kontrollera att telefonens klocka går rätt och försök med nästa kod.",
        "error_title": "Inloggningen kunde inte starta",
        "logged_out": "Du är utloggad.",
        "logged_out_title": "Utloggad",
    },
    "en": {
        "title": "Log in",
        "lead": "Log in with username, password and the one-time code from your authenticator app.",
        "login": "Username",
        "password": "Password",
        "code": "One-time code (6 digits)",
        "code_hint": "The first time, leave this empty; you will then set up an authenticator app.",
        "submit": "Log in",
        "switch": "Svenska",
        "bad_credentials": "Wrong username or password.",
        "bad_totp": "Wrong one-time code. Enter the code your authenticator app shows right now and try again.",
        "totp_required": "Enter the one-time code from your authenticator app.",
        "disabled": "The account is disabled. Contact your administrator.",
        "expired": "The page had expired. Please try again.",
        "slow_down": "Too many failed logins from your connection. Wait a few minutes and try again.",
        "enrol_title": "Set up an authenticator app",
        "enrol_lead": (
            "Logging in needs two factors. Scan the QR code with an authenticator app "
            "(e.g. FreeOTP, Google Authenticator or Microsoft Authenticator) and enter the code it shows."
        ),
        "enrol_manual": "Cannot scan? Enter the key manually:",
        "enrol_submit": "Confirm and log in",
        "enrol_bad": "The code did not match. Check that the phone's clock is right and try the next code.",
        "error_title": "Login could not start",
        "logged_out": "You are logged out.",
        "logged_out_title": "Logged out",
    },
}


def lang_of(value: str | None) -> str:
    return "en" if (value or "").lower().startswith("en") else "sv"


def _page(lang: str, title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)} – Brygga</title><link rel='stylesheet' href='/idp/static/idp.css'></head>"
        f"<body><main class='card'><p class='brand'>Brygga</p>{body}</main></body></html>"
    )


def _message(text: str | None) -> str:
    if not text:
        return ""
    return f"<p class='error' role='alert' data-testid='login-error'>{escape(text)}</p>"


def login_page(lang: str, query: str, form_token: str, message: str | None = None, login: str = "") -> str:
    t = TEXTS[lang]
    other = "en" if lang == "sv" else "sv"
    params = [(key, value) for key, value in parse_qsl(query, keep_blank_values=True) if key != "ui_locales"]
    switch = "/idp/authorize?" + urlencode([*params, ("ui_locales", other)])
    body = (
        f"<p class='lang'><a href='{escape(switch)}' lang='{other}' hreflang='{other}'>{t['switch']}</a></p>"
        f"<h1>{t['title']}</h1><p>{t['lead']}</p>{_message(message)}"
        "<form method='post' action='/idp/login' autocomplete='on'>"
        f"<input type='hidden' name='q' value='{escape(query)}'>"
        f"<input type='hidden' name='form_token' value='{escape(form_token)}'>"
        f"<input type='hidden' name='lang' value='{lang}'>"
        f"<label for='login'>{t['login']}</label>"
        f"<input id='login' name='login' autocomplete='username' required value='{escape(login)}'>"
        f"<label for='password'>{t['password']}</label>"
        "<input id='password' name='password' type='password' autocomplete='current-password' required>"
        f"<label for='code'>{t['code']}</label>"
        "<input id='code' name='code' inputmode='numeric' autocomplete='one-time-code' maxlength='6'"
        " aria-describedby='code-hint'>"
        f"<p class='hint' id='code-hint'>{t['code_hint']}</p>"
        f"<button type='submit'>{t['submit']}</button></form>"
    )
    return _page(lang, t["title"], body)


def enrol_page(
    lang: str, query: str, form_token: str, ticket: str, qr_svg: str, secret: str, message: str | None = None
) -> str:
    t = TEXTS[lang]
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    body = (
        f"<h1>{t['enrol_title']}</h1><p>{t['enrol_lead']}</p>{_message(message)}"
        f"<figure class='qr' aria-label='QR'>{qr_svg}</figure>"
        f"<p>{t['enrol_manual']} <code data-testid='totp-secret'>{escape(grouped)}</code></p>"
        "<form method='post' action='/idp/enrol'>"
        f"<input type='hidden' name='q' value='{escape(query)}'>"
        f"<input type='hidden' name='form_token' value='{escape(form_token)}'>"
        f"<input type='hidden' name='ticket' value='{escape(ticket)}'>"
        f"<input type='hidden' name='lang' value='{lang}'>"
        f"<label for='code'>{t['code']}</label>"
        "<input id='code' name='code' inputmode='numeric' autocomplete='one-time-code' maxlength='6' required>"
        f"<button type='submit'>{t['enrol_submit']}</button></form>"
    )
    return _page(lang, t["enrol_title"], body)


def error_page(lang: str, detail: str) -> str:
    t = TEXTS[lang]
    return _page(lang, t["error_title"], f"<h1>{t['error_title']}</h1>{_message(detail)}")


def logged_out_page(lang: str) -> str:
    t = TEXTS[lang]
    return _page(lang, t["logged_out_title"], f"<h1>{t['logged_out_title']}</h1><p role='status'>{t['logged_out']}</p>")
