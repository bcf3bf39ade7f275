"""Patient-level splits: test, validation, an unlabelled pretraining pool, labelled subsets.

Two protocols:

* ACDC as in Chaitanya et al. (NeurIPS 2020, arXiv 2006.10511): their 20 test patients,
  validation 011 / 071, the 52-patient unlabelled pool and their fixed labelled combinations
  of 1, 2 and 8 volumes, so that numbers compare with the published ones. "all" is the upper
  bound: every patient outside test and validation (78).
* Any other data set: a seeded random patient-level split, ``n_combos`` random labelled
  combinations per k drawn from the training patients.

Either split gives more combinations on request (``--combos N``): after its own, fixed seeded
extra ones drawn from the patients outside test and validation, the same for every run, so that
paired comparisons have 10 to 20 (combination, seed) pairs at k = 1 and 2.

A patient never appears in two of test, validation and training; pretraining only ever gets
the pool, which holds no test or validation patient.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from medkit.errors import MedkitError


def _acdc(*nums: int) -> tuple[str, ...]:
    return tuple(f"patient{n:03d}" for n in nums)


def _r(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


ACDC_TEST = _acdc(7, 8, 9, 10, 27, 28, 29, 30, 47, 48, 49, 50, 67, 68, 69, 70, 87, 88, 89, 90)
ACDC_VAL = _acdc(11, 71)
ACDC_POOL = _acdc(*_r(1, 6), 12, *_r(17, 26), *_r(37, 46), *_r(57, 66), 72, *_r(77, 86), *_r(97, 100))
ACDC_LABELLED = {
    1: (_acdc(2), _acdc(42), _acdc(95), _acdc(22), _acdc(62)),
    2: (_acdc(42, 62), _acdc(2, 42), _acdc(42, 95), _acdc(2, 22), _acdc(2, 95)),
    8: (_acdc(2, 22, 42, 62, 95, 3, 23, 43), _acdc(2, 22, 42, 62, 95, 63, 94, 43),
        _acdc(2, 22, 42, 62, 95, 3, 94, 23)),
}


@dataclass(frozen=True)
class Split:
    """A patient-level split.

    Attributes:
        name: ``"acdc-chaitanya"`` or ``"random-seed<S>"``.
        test, val: patient ids.
        pool: unlabelled pretraining patients (never test or validation).
        train: every patient allowed as labelled training data (the "all labels" set).
        labelled: k -> tuple of combinations, each a tuple of k patient ids.
    """

    name: str
    test: tuple[str, ...]
    val: tuple[str, ...]
    pool: tuple[str, ...]
    train: tuple[str, ...]
    labelled: dict[int, tuple[tuple[str, ...], ...]]

    def combinations(self, k: int | str, n: int | None = None) -> tuple[tuple[str, ...], ...]:
        """Labelled combinations for k volumes; ``"all"`` gives the single full training set.

        Args:
            k: labelled volumes per combination, or ``"all"``.
            n: how many: the split's own combinations first (ACDC: Chaitanya et al.'s), then
                fixed, seeded extra ones (:func:`extra_combinations`), so that two runs asking for
                the same n get the same combinations. None: the split's own only.
        """
        if n is not None and (not isinstance(n, int) or n < 1):
            raise MedkitError(f"combos must be a positive number of combinations, got {n!r}")
        if k == "all":
            return (self.train,)
        if not isinstance(k, int) or k < 1:
            raise MedkitError(f"labelled takes positive integers or 'all', got {k!r}")
        if k > len(self.train):
            raise MedkitError(f"labelled {k}: only {len(self.train)} labelled training patients "
                              f"are available in split {self.name}")
        own = self.labelled.get(k, ())
        if n is None:
            if not own:
                raise MedkitError(f"labelled {k}: split {self.name} has no combinations of {k}; "
                                  f"ask for some with combos=N")
            return own
        return (own + extra_combinations(self.train, k, n - len(own), exclude=own))[:n]


EXTRA_SEED = 20260  # the seed of the extra combinations: fixed, so every run draws the same ones


def extra_combinations(candidates: tuple[str, ...], k: int, n: int,
                       exclude: tuple[tuple[str, ...], ...] = ()) -> tuple[tuple[str, ...], ...]:
    """``n`` further combinations of ``k`` patients drawn from ``candidates`` (the patients outside
    test and validation) with a fixed seed per k, none repeating another or one of ``exclude``.

    The same (candidates, k) always give the same sequence, so a run asking for 10 combinations
    gets the first 10 of it whatever its own seed: the pairing of two runs holds.
    """
    if n <= 0:
        return ()
    pool = sorted(candidates)
    seen = {tuple(sorted(c)) for c in exclude}
    if math.comb(len(pool), k) - len(seen) < n:  # refuse at once rather than after a million draws
        raise MedkitError(f"combos: only {math.comb(len(pool), k)} distinct combinations of {k} of "
                          f"{len(pool)} patients exist")
    rng = random.Random(EXTRA_SEED + k)
    out: list[tuple[str, ...]] = []
    for _ in range(1000 * n):  # with few candidates, distinct combinations may run out
        combo = tuple(sorted(rng.sample(pool, k)))
        if combo not in seen:
            seen.add(combo)
            out.append(combo)
            if len(out) == n:
                return tuple(out)
    raise MedkitError(f"combos: only {len(out) + len(exclude)} distinct combinations of {k} of "
                      f"{len(pool)} patients could be drawn")


def acdc_split() -> Split:
    """Chaitanya et al.'s ACDC protocol (Chaitanya et al., NeurIPS 2020, their published split files)."""
    train = tuple(sorted(set(_acdc(*_r(1, 100))) - set(ACDC_TEST) - set(ACDC_VAL)))
    return Split("acdc-chaitanya", ACDC_TEST, ACDC_VAL, ACDC_POOL, train, ACDC_LABELLED)


def random_split(patients: list[str] | tuple[str, ...], seed: int = 0, test_fraction: float = 0.2,
                 n_val: int = 2, ks: tuple[int, ...] = (1, 2, 8), n_combos: int = 3) -> Split:
    """A seeded patient-level split of any data set.

    Args:
        patients: patient ids (duplicates are ignored).
        seed: the same seed gives the same split.
        test_fraction: share of patients held out for testing (at least one).
        n_val: validation patients (for model selection during training).
        ks: labelled set sizes to prepare; those larger than the training set are skipped.
        n_combos: random combinations per k.
    """
    pats = sorted(set(patients))
    if len(pats) < 3:
        raise MedkitError(f"need at least 3 patients for a test/validation/train split, got {len(pats)}")
    rng = random.Random(seed)
    rng.shuffle(pats)
    n_test = max(1, round(test_fraction * len(pats)))
    n_val = min(n_val, len(pats) - n_test - 1)
    test, val, train = pats[:n_test], pats[n_test:n_test + n_val], pats[n_test + n_val:]
    labelled = {k: tuple(tuple(sorted(rng.sample(train, k))) for _ in range(n_combos))
                for k in ks if k <= len(train)}
    return Split(f"random-seed{seed}", tuple(sorted(test)), tuple(sorted(val)), tuple(sorted(train)),
                 tuple(sorted(train)), labelled)


def split_for(patients: list[str] | tuple[str, ...], seed: int = 0, protocol: str = "auto") -> Split:
    """The split a data set gets: ACDC's published protocol when it is ACDC, else random.

    Args:
        patients: the data set's patient ids.
        seed: seed of the random split.
        protocol: ``"auto"`` (ACDC when all 100 ACDC patients are present), ``"acdc"`` or ``"random"``.
    """
    is_acdc = set(_acdc(*_r(1, 100))) <= set(patients)
    if protocol == "acdc" or (protocol == "auto" and is_acdc):
        if not is_acdc:
            raise MedkitError("split acdc needs patients patient001 .. patient100 in the data")
        return acdc_split()
    if protocol not in ("auto", "random"):
        raise MedkitError(f"split must be 'auto', 'acdc' or 'random', got {protocol!r}")
    return random_split(patients, seed)
