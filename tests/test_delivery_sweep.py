"""Seeds of ``bench/delivery_sweep.py`` that once lost a promised delivery, run again."""

from __future__ import annotations

import pytest

from bench.delivery_sweep import run_seed


@pytest.mark.parametrize("seed", [739, 8640])
def test_a_seed_that_once_lost_deliveries_delivers_every_promised_one(seed: int) -> None:
    """Seed 739: a link failure reached one end of a link before that end's
    ``Join`` arrived at the other, which took the joiner as a neighbour; the
    joiner's other neighbours left and its passive view was empty, so its one
    neighbour did not hold it, sent it nothing, and answered its probes.  Its
    publications reached nobody.  Each keep-alive tick now asks one neighbour
    to confirm that it holds us (docs/overlay.md, "Confirmations").

    Seed 8640: a publisher took its former child as parent and pushed it a
    publication under the interest rule, then told it "you are my parent";
    the child's narrower advert crossed the push, and the child, not yet
    told it was the parent, dropped the document while the publisher counted
    it a holder: seven subscribers lost it.  A node now keeps the own
    publications of a neighbour that may have made it its parent already
    (``SpanningTree.may_be_child``; docs/pubsub.md, section 6)."""
    result = run_seed(seed)
    assert result["promised"] > 0
    assert (result["lost"], result["duplicates"], result["wrong"]) == (0, 0, 0), result
