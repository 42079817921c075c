"""The program planner with LLM user, assistant and tool agents, against the real embedded server."""

from __future__ import annotations

from pathlib import Path

import pytest

from looptool.ledger import Ledger
from looptool.llm.server import llama_cpp_server_available, open_llm
from looptool.synth.concepts import CapabilityLibrary
from looptool.synth.dialogue import SimulationConfig
from looptool.synth.pipeline import simulate_program
from looptool.synth.program_apis import synthesize_program
from looptool.synth.trees import ConstraintTree
from looptool.synth.verify import check_dialogue

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not llama_cpp_server_available(), reason="llama-cpp-python[server] is not installed")]


@pytest.mark.parametrize("llm_agent", ["user", "assistant", "tool"])
def test_one_llm_agent_beside_the_program_planner(tmp_path, llm_agent):
    library = CapabilityLibrary.load(ROOT / "data" / "trees" / "concepts.yaml", ROOT / "tests" / "data" / "synth" / "capabilities")
    pool = synthesize_program(library, ConstraintTree.load(ROOT / "data" / "trees" / "constraint_tree.yaml"), 0, Ledger("t"))
    agents = {"planner": "program", "user": "template", "assistant": "oracle", "tool": "program", llm_agent: "llm"}
    cfg = SimulationConfig.from_mapping({
        "dialogues": 2, "unseen_dialogues": 0, "noise": {"rate": 0.0}, "paraphrase": {"rate": 0.0}, "agents": agents, "need_kind_weights": {"single_call": 1}, "needs_per_dialogue": [1, 1],
        "tools_per_dialogue": [2, 2], "tool_error_rate": 0.0, "assistant_samples": 1, "turn_retries": 1,
        "max_tokens": {"planner": 120, "user": 60, "assistant": 100, "tool": 60, "reply": 40}})
    ledger = Ledger("simulate")
    with open_llm({"backend": "embedded", "cache_path": str(tmp_path / "cache.sqlite"), "max_retries": 1,
                   "server": {"n_threads": 1}}) as client:
        dialogues, _ = simulate_program(library, pool, cfg, 0, ledger, client)
        assert client.usage.calls > 0  # the LLM played its agent
    assert ledger.n_in == 2 and ledger.count("kept") + ledger.count("rejected") == 2
    for dialogue in dialogues:
        assert dialogue["messages"][0]["role"] == "system"
        problems = check_dialogue(dialogue)  # the LLM may break rules; verification names why
        assert all(p.code for p in problems)
        if llm_agent == "tool":
            assert any(m["role"] == "tool" for m in dialogue["messages"])
