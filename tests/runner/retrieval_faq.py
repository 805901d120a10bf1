"""A small bank FAQ written for the retrieval tests and benchmark: 20 snippets over five topics.

Metadata of three types, so that filters are checked on each: ``topic`` (text), ``tier`` (the
customer tier an answer applies to, 1-3: bigint) and ``online`` (whether it can be done in the
app: boolean).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

FAQ: list[dict[str, Any]] = [
    {"id": "card-lost", "topic": "cards", "tier": 1, "online": True,
     "text": "If your debit card is lost or stolen, freeze it at once in the app under Cards > Freeze, "
             "then order a replacement; the new card arrives in 3 to 5 working days."},
    {"id": "card-pin", "topic": "cards", "tier": 1, "online": False,
     "text": "Forgot your card PIN? You can view it at any of our cash machines after entering your "
             "card, or ask a branch to post a PIN reminder to your home address."},
    {"id": "card-abroad", "topic": "cards", "tier": 2, "online": True,
     "text": "Using your card abroad: card payments in foreign currencies carry no fee for Plus and "
             "Premium customers; cash withdrawals abroad cost 2 percent."},
    {"id": "card-declined", "topic": "cards", "tier": 1, "online": True,
     "text": "A card payment can be declined when the daily spending limit is reached, the card is "
             "frozen, or the merchant is blocked; check the reason in the app's activity feed."},
    {"id": "transfer-time", "topic": "transfers", "tier": 1, "online": True,
     "text": "Domestic bank transfers arrive within two hours on working days; transfers made after "
             "6 pm or at weekends are processed the next working day."},
    {"id": "transfer-international", "topic": "transfers", "tier": 2, "online": True,
     "text": "International transfers (SWIFT) take 1 to 4 working days and cost a flat 15 euro fee, "
             "plus the exchange rate margin shown before you confirm."},
    {"id": "transfer-cancel", "topic": "transfers", "tier": 1, "online": False,
     "text": "A transfer that has already been sent cannot be cancelled in the app; call us at once "
             "and we will ask the receiving bank to return the money."},
    {"id": "transfer-limit", "topic": "transfers", "tier": 3, "online": True,
     "text": "The daily transfer limit is 10,000 euro; Premium customers can raise it to 50,000 euro "
             "in the app under Settings > Limits."},
    {"id": "loan-apply", "topic": "loans", "tier": 2, "online": True,
     "text": "To apply for a personal loan, choose Loans > Apply in the app; you need three recent "
             "payslips, and most applications get an answer within one working day."},
    {"id": "loan-rate", "topic": "loans", "tier": 2, "online": False,
     "text": "Personal loan interest rates start at 5.9 percent APR and depend on the amount, the term "
             "and your credit history; the rate is fixed for the whole term."},
    {"id": "loan-early", "topic": "loans", "tier": 3, "online": True,
     "text": "You may repay a loan early at any time; the early repayment fee is at most one month "
             "of interest on the amount repaid."},
    {"id": "mortgage", "topic": "loans", "tier": 3, "online": False,
     "text": "Mortgages are arranged with an adviser in a branch meeting; bring proof of income, "
             "your last three bank statements and details of the property."},
    {"id": "account-open", "topic": "accounts", "tier": 1, "online": True,
     "text": "Open a current account in the app in about ten minutes with a passport or national "
             "identity card and a selfie for identity verification."},
    {"id": "account-close", "topic": "accounts", "tier": 1, "online": False,
     "text": "To close your account, empty it first, then send a signed closure request by post or "
             "visit a branch; standing orders are cancelled automatically."},
    {"id": "account-statement", "topic": "accounts", "tier": 1, "online": True,
     "text": "Monthly statements are available as PDF in the app under Accounts > Statements and are "
             "kept for ten years."},
    {"id": "account-overdraft", "topic": "accounts", "tier": 2, "online": True,
     "text": "An arranged overdraft of up to 2,000 euro can be requested in the app; interest is "
             "charged at 9.9 percent only on the amount you are overdrawn."},
    {"id": "security-phishing", "topic": "security", "tier": 1, "online": False,
     "text": "We never ask for your password or a one-time code by email, text message or phone; "
             "report suspicious messages to phishing@example-bank.test."},
    {"id": "security-2fa", "topic": "security", "tier": 1, "online": True,
     "text": "Two-factor authentication protects your login: approve each new device in the app, "
             "or use a one-time code sent by text message."},
    {"id": "security-fraud", "topic": "security", "tier": 1, "online": False,
     "text": "If you see a payment you did not make, call our 24-hour fraud line; we refund "
             "unauthorised payments and replace your card."},
    {"id": "security-password", "topic": "security", "tier": 1, "online": True,
     "text": "To reset your online banking password, tap Forgot password on the login screen and "
             "confirm with the code we send to your phone."},
]  # fmt: skip

FIELDS = ["topic", "tier", "online"]


def write_jsonl(path: Path, rows: list[dict[str, Any]] = FAQ) -> Path:
    """The rows as JSON Lines (types kept: tier an integer, online a boolean)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]] = FAQ) -> Path:
    """The rows as CSV (every value becomes text)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "topic", "tier", "online", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return path
