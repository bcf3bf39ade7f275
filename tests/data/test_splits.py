from __future__ import annotations

import pytest

from medkit.data.splits import acdc_split, random_split, split_for
from medkit.errors import MedkitError


def test_acdc_protocol_is_chaitanyas():
    s = acdc_split()
    assert len(s.test) == 20 and len(s.pool) == 52 and len(s.train) == 78
    assert {len(s.labelled[k]) for k in (1, 2)} == {5} and len(s.labelled[8]) == 3
    assert s.labelled[1][0] == ("patient002",) and s.labelled[2][0] == ("patient042", "patient062")
    for part in (s.pool, s.train, s.val):
        assert not set(part) & set(s.test)
    assert not set(s.val) & set(s.train) and not set(s.val) & set(s.pool)
    for combos in s.labelled.values():
        for c in combos:
            assert set(c) <= set(s.train)


def test_random_split_is_seeded_and_disjoint():
    pats = [f"p{i:02d}" for i in range(30)]
    a, b = random_split(pats, seed=1), random_split(pats, seed=1)
    assert a == b and random_split(pats, seed=2) != a
    assert len(a.test) == 6 and len(a.val) == 2 and len(a.train) == 22
    assert not set(a.test) & set(a.train) and not set(a.val) & set(a.train)
    assert all(len(c) == 8 for c in a.labelled[8])


def test_too_many_labelled_volumes_is_a_clear_error():
    s = random_split([f"p{i}" for i in range(6)], seed=0)
    with pytest.raises(MedkitError, match="only 3 labelled training patients"):
        s.combinations(8)
    with pytest.raises(MedkitError, match="needs patients patient001"):
        split_for(["a", "b", "c"], protocol="acdc")


def test_extra_combinations_follow_the_published_ones_and_never_change():
    s = acdc_split()
    ten = s.combinations(1, 10)
    assert ten[:5] == s.combinations(1) and len(set(ten)) == 10
    assert s.combinations(1, 10) == ten and s.combinations(1, 3) == ten[:3]  # fixed, whatever is asked
    held_out = set(s.test) | set(s.val)
    assert all(len(c) == 1 and not set(c) & held_out for c in ten)
    two = s.combinations(2, 12)
    assert two[:5] == s.combinations(2) and len(set(two)) == 12 and all(len(set(c)) == 2 for c in two)
    r = random_split([f"p{i}" for i in range(20)], seed=1)
    assert r.combinations(4, 2) == r.combinations(4, 2) and len(r.combinations(4, 2)) == 2  # k without own ones
    with pytest.raises(MedkitError, match="combos must be a positive"):
        s.combinations(1, 0)
    with pytest.raises(MedkitError, match="ask for some with combos=N"):
        r.combinations(4)
