"""Assembly of the next round's data: parts, fresh slices, dedup priority, shuffle, ledger."""

from looptool.loop.assemble import assemble, fresh_slice
from looptool.schema import Call, Sample, Tool

TOOL = Tool("f", "F.", {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]})


def s(x, origin="seed"):
    return Sample([TOOL], [{"role": "user", "content": f"x={x}"}], [Call("f", {"x": x})], origin=origin)


def test_fresh_slices_do_not_overlap_between_rounds():
    pool = [s(i) for i in range(10)]
    r1, r2 = fresh_slice(pool, 1, 4), fresh_slice(pool, 2, 4)
    assert [x.id for x in r1] == [p.id for p in pool[:4]] and [x.id for x in r2] == [p.id for p in pool[4:8]]
    assert {x.origin for x in r1} == {"fresh"}
    assert len(fresh_slice(pool, 3, 4)) == 2


def test_assemble_dedups_by_content_with_priority_and_balances():
    hppl = [s(1, "hppl"), s(2, "hppl")]
    seeds = [s(2, "error_seed"), s(3, "corrected")]
    edde = [s(4, "edde"), s(4, "edde")]
    fresh = [s(5, "fresh"), s(1, "fresh")]
    out = assemble([hppl, seeds, edde, fresh], next_round=2, seed=0)
    assert out.composition == {"corrected": 1, "error_seed": 1, "edde": 1, "hppl": 1, "fresh": 1, "total": 5}
    by_x = {x.label[0].arguments["x"]: x.origin for x in out.samples}
    assert by_x == {1: "hppl", 2: "error_seed", 3: "corrected", 4: "edde", 5: "fresh"}
    assert all(x.round == 2 for x in out.samples)
    summary = out.ledger.summary()
    assert summary["in"] == 8 and summary["kept"] == 5 and summary["rejected_by_reason"] == {"duplicate_content": 3}


def test_assemble_is_seeded():
    parts = [[s(i, "fresh") for i in range(20)]]
    a = [x.id for x in assemble(parts, 2, seed=1).samples]
    assert a == [x.id for x in assemble(parts, 2, seed=1).samples]
    assert a != [x.id for x in assemble(parts, 2, seed=2).samples]
