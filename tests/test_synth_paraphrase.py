"""The LLM rewording of template user turns: rules on literal text, then the real embedded server."""

from __future__ import annotations

from pathlib import Path

import pytest

from looptool.ledger import Ledger
from looptool.llm.server import llama_cpp_server_available, open_llm
from looptool.synth.paraphrase import check_paraphrase, paraphrase_dialogues, paraphrase_request

ORIGINAL = "Please book a court at Lisbon Racket Club on 2025-03-21 for 4 people, using the cheapest service."
KEEP = ["Lisbon Racket Club", "2025-03-21", "4 people", "the cheapest service"]


def test_a_rewording_that_keeps_every_value_passes():
    text = "Could you reserve a court at lisbon racket club for 4 people on 2025-03-21, the cheapest service please?"
    assert check_paraphrase(ORIGINAL, text, KEEP) is None


@pytest.mark.parametrize("candidate, reason", [
    ("Book a court at Lisbon Racket Club on 2025-03-22 for 4 people, the cheapest service.", "paraphrase_changed_value"),
    ("Book a court at Lisbon Racket Club for 4 people, using the cheapest service, whenever suits.", "paraphrase_dropped_value"),
    ("", "paraphrase_failed"),
    ("ok", "paraphrase_bad_length"),
    ('<tool_call>{"name": "book"}</tool_call> Lisbon Racket Club 2025-03-21 4 people the cheapest service',
     "paraphrase_call_markup"),
])
def test_a_rewording_that_loses_a_value_is_rejected_by_name(candidate, reason):
    assert check_paraphrase(ORIGINAL, candidate, KEEP) == reason


@pytest.mark.server
@pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed")
def test_the_embedded_model_changing_a_value_is_rejected(tmp_path: Path):
    """Asked outright to change the numbers, SmolLM2's rewording must not pass the check."""
    original = "Transfer 250 EUR from account ACC-004211 on 2025-03-21."
    keep = ["250 EUR", "ACC-004211", "2025-03-21"]
    with open_llm({"backend": "embedded", "cache_path": str(tmp_path / "cache.sqlite"), "max_retries": 1,
                   "server": {"n_threads": 1}}) as client:
        request = paraphrase_request(original, [], seed=0, sample_index=0, max_tokens=60, temperature=0.0,
                                     instruction="Rewrite this message, but use different numbers and a different date:")
        result = client.chat_many([request], progress=False)[0]
        assert result.ok, result.error
        reason = check_paraphrase(original, result.text, keep)
        print("rewording:", result.text, "->", reason)
        assert reason in ("paraphrase_changed_value", "paraphrase_dropped_value")
        # The same check runs inside the stage: a dialogue's turn is reworded or left as written.
        dialogue = {"id": "dlg-00000", "messages": [{"role": "user", "content": original}], "user_keep": {"0": keep}}
        ledger = Ledger("paraphrase")
        counts = paraphrase_dialogues(client, [dialogue], 1.0, 0, 60, 0.7, ledger)
        assert counts["asked"] == 1 and ledger.summary()["in"] == 1
        text = dialogue["messages"][0]["content"]
        assert all(k.lower() in text.lower() for k in keep)  # accepted ones keep the values; rejected ones stay as written
