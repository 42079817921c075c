"""LLM rewording of template user turns that must keep every argument value verbatim (issue #13).

The template user says values exactly; its sentences repeat a few frames. An LLM can vary the
wording, but a weak one also drops or changes values, which would make the label wrong. So every
rewording is rule-checked against the strings the turn must keep (values, unit strings, relative
date phrases, enum paraphrases): a rewording that loses one is rejected with a named reason and the
template text stays. Reasons: ``paraphrase_failed`` (no usable reply), ``paraphrase_bad_length``,
``paraphrase_dropped_value`` (a kept string is gone), ``paraphrase_changed_value`` (it is gone and a
new number, code or date took its place), ``paraphrase_call_markup``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from looptool.ledger import Ledger
from looptool.llm.client import ChatRequest
from looptool.synth.values import normalise_text

SYSTEM = ("You rewrite a user's message to an assistant in different words, keeping its meaning. Keep every "
          "value (names, numbers with units, dates, codes, quoted text) exactly as written. Reply with the "
          "rewritten message only.")
# Tokens that carry values: numbers (with decimals), codes with digits, ISO dates, e-mail addresses.
VALUE_TOKEN = re.compile(r"[\w.+-]+@[\w.-]+|\d{4}-\d{2}-\d{2}|[A-Za-z]*\d[\w./:-]*")


def paraphrase_request(text: str, keep: Sequence[str], seed: int, sample_index: int, max_tokens: int,
                       temperature: float, instruction: str | None = None) -> ChatRequest:
    values = "; ".join(keep) if keep else "(none)"
    prompt = (instruction or "Rewrite this message:") + f"\n{text}\nValues to keep exactly: {values}"
    return ChatRequest(messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
                       temperature=temperature, max_tokens=max_tokens, seed=seed, sample_index=sample_index)


def check_paraphrase(original: str, candidate: str | None, keep: Sequence[str]) -> str | None:
    """The reason a rewording is rejected, or None when it keeps every value."""
    text = (candidate or "").strip().strip('"').strip()
    if not text:
        return "paraphrase_failed"
    if "<tool_call>" in text or "</tool_call>" in text:
        return "paraphrase_call_markup"
    if not 0.4 * len(original) <= len(text) <= 2.5 * len(original) + 20:
        return "paraphrase_bad_length"
    said = normalise_text(text)
    lost = [k for k in keep if normalise_text(k) not in said]
    if not lost:
        return None
    before = {t.lower() for t in VALUE_TOKEN.findall(original)}
    new_tokens = [t for t in VALUE_TOKEN.findall(text) if t.lower() not in before]
    return "paraphrase_changed_value" if new_tokens else "paraphrase_dropped_value"


def clean_reply(text: str | None) -> str:
    line = next((ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(rewritten( message)?|user|message)\s*:\s*", "", line, flags=re.I)
    return line.strip().strip('"').strip()


def paraphrase_dialogues(client: Any, dialogues: list[dict[str, Any]], rate: float, seed: int, max_tokens: int,
                         temperature: float, ledger: Ledger) -> dict[str, int]:
    """Reword a seeded share of the template user turns in place; every attempt gets a ledger record."""
    picks = []
    for d in dialogues:
        rng = random.Random(f"paraphrase:{seed}:{d['id']}")
        for index, keep in sorted((d.get("user_keep") or {}).items(), key=lambda kv: int(kv[0])):
            if rng.random() < rate:
                picks.append((d, int(index), keep))
    ledger.expect(len(picks))
    if not picks:
        return {"asked": 0, "accepted": 0}
    requests = [paraphrase_request(d["messages"][i]["content"], keep, seed, n, max_tokens, temperature)
                for n, (d, i, keep) in enumerate(picks)]
    results = client.chat_many(requests, desc="paraphrase")
    accepted = 0
    for (d, i, keep), result in zip(picks, results):
        item = f"{d['id']}/m{i}"
        original = d["messages"][i]["content"]
        candidate = clean_reply(result.text) if result.ok else None
        reason = check_paraphrase(original, candidate, keep)
        if reason:
            ledger.reject(item, reason, detail=(candidate or str(result.error))[:200])
            continue
        d["messages"][i] = {**d["messages"][i], "content": candidate, "template": original}
        accepted += 1
        ledger.keep(item)
    return {"asked": len(picks), "accepted": accepted}
