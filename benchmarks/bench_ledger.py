"""The ledger's bookkeeping cost per acquire and release as the pool grows.

    .venv/bin/python benchmarks/bench_ledger.py [--sizes 10,100,1000] [--json PATH]

No browser: this times the pure ``Ledger`` of ``pytest_ctxleak/ledger.py``, which
every pooled acquire and release goes through. For each size N it fills a ledger
with N contexts, each held by one lease, and N idle contexts, then times three
cycles. Each round times a batch of each cycle at every size, the sizes taking
turns, and the order flips from round to round:

- share: acquire a context that is already held (a second lease) and release it;
- reuse: acquire an idle context, release it, and record its reset as done;
- evict: acquire a new kind of context when the pool is full, which evicts the
  least recently used idle context, then release the new one and record its reset.

The figure is the median time per cycle over the rounds. It must stay flat as N
grows: the script reports the ratio of the largest size's time to the smallest's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import describe_machine, load_average, write_json

from pytest_ctxleak.ledger import Ledger, ReleaseAction, Ticket, TicketState

# A cycle's cost may grow by this factor from the smallest size to the largest and
# still count as flat: timer noise on a shared machine alone moves it by tens of
# percent, while an O(n) scan over 10,000 entries would multiply it.
FLAT_RATIO = 2.0


def grant(ledger: Ledger, signature: str) -> Ticket:
    """Acquire a context of ``signature``, creating it when the ledger requests that."""
    ticket = ledger.request(signature, signature)
    if ticket.state is TicketState.CREATING:
        ledger.created(ticket)
    elif ticket.state is TicketState.EVICTING:
        assert ticket.victim is not None
        ledger.closed(ticket.victim)
        ledger.created(ticket)
    if ticket.state is not TicketState.GRANTED:
        raise RuntimeError(f"acquire of {signature} ended {ticket.state.value}")
    return ticket


def release(ledger: Ledger, ticket: Ticket) -> None:
    """Release a ticket's lease and carry out the step the ledger returns."""
    assert ticket.lease is not None
    outcome = ledger.release(ticket.lease)
    if outcome.action is ReleaseAction.RESET:
        ledger.reset_done(outcome.entry, True)
    elif outcome.action is ReleaseAction.CLOSE:
        ledger.closed(outcome.entry)


def filled_ledger(size: int) -> tuple[Ledger, list[Ticket]]:
    """Return a full ledger: ``size`` held contexts and ``size`` idle ones."""
    ledger = Ledger(max_contexts=2 * size)
    held = [grant(ledger, f"held-{number}") for number in range(size)]
    for number in range(size):
        release(ledger, grant(ledger, f"idle-{number}"))
    assert ledger.occupied == 2 * size
    assert len(ledger.outstanding()) == size
    return ledger, held


def share_cycle(ledger: Ledger, size: int) -> Callable[[int], None]:
    def cycle(number: int) -> None:
        release(ledger, grant(ledger, f"held-{number % size}"))

    return cycle


def reuse_cycle(ledger: Ledger, size: int) -> Callable[[int], None]:
    def cycle(number: int) -> None:
        release(ledger, grant(ledger, f"idle-{number % size}"))

    return cycle


def evict_cycle(ledger: Ledger, size: int) -> Callable[[int], None]:
    # Every cycle requests a signature the ledger has not seen, so the pool, full
    # of held and idle contexts, must evict its least recently used idle one.
    counter = iter(range(10**9))

    def cycle(number: int) -> None:
        release(ledger, grant(ledger, f"new-{next(counter)}"))

    return cycle


CYCLES: dict[str, Callable[[Ledger, int], Callable[[int], None]]] = {
    "share": share_cycle,
    "reuse": reuse_cycle,
    "evict": evict_cycle,
}


def time_cycle(cycle: Callable[[int], None], ops: int, rounds: int) -> list[float]:
    """Return the mean seconds per cycle of each round."""
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for number in range(ops):
            cycle(number)
        per_round.append((time.perf_counter() - start) / ops)
    return per_round


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"invalid sizes {text!r}: expected whole numbers of at least 1, "
            "such as 10,100,1000"
        )
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[10, 100, 1000, 10000])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    load_before = load_average()
    results: dict[str, dict[str, Any]] = {name: {} for name in CYCLES}
    for name, make_cycle in CYCLES.items():
        ledgers = {size: filled_ledger(size) for size in args.sizes}
        cycles = {size: make_cycle(ledgers[size][0], size) for size in args.sizes}
        for cycle in cycles.values():
            time_cycle(cycle, args.ops // 10, 1)  # warm-up
        per_round: dict[int, list[float]] = {size: [] for size in args.sizes}
        for round_number in range(args.rounds):
            # The sizes take turns within each round, in an order that flips from
            # round to round, so a slow spell of the machine hits every size.
            order = args.sizes if round_number % 2 == 0 else args.sizes[::-1]
            for size in order:
                per_round[size] += time_cycle(cycles[size], args.ops, 1)
        for size in args.sizes:
            ledger, held = ledgers[size]
            ledger.check_invariants()
            if len(ledger.outstanding()) != len(held):
                raise SystemExit(f"{name} at size {size} left leases outstanding")
            median_us = statistics.median(per_round[size]) * 1e6
            results[name][str(size)] = {
                "median_us": median_us,
                "min_us": min(per_round[size]) * 1e6,
                "max_us": max(per_round[size]) * 1e6,
            }
            print(
                f"{name:>5} with {size:>6} held + {size:>6} idle: "
                f"{median_us:7.2f} us per cycle",
                flush=True,
            )
    smallest, largest = str(args.sizes[0]), str(args.sizes[-1])
    ratios = {
        name: by_size[largest]["median_us"] / by_size[smallest]["median_us"]
        for name, by_size in results.items()
    }
    flat = all(ratio <= FLAT_RATIO for ratio in ratios.values())
    for name, ratio in ratios.items():
        print(f"{name}: {largest} / {smallest} = {ratio:.2f}x")
    print(f"flat (every ratio at most {FLAT_RATIO:g}x): {'yes' if flat else 'no'}")
    report = {
        "benchmark": "ledger",
        "sizes": args.sizes,
        "ops": args.ops,
        "rounds": args.rounds,
        "flat_ratio_limit": FLAT_RATIO,
        "cycles": results,
        "ratio_largest_over_smallest": ratios,
        "flat": flat,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": describe_machine(),
    }
    write_json(args.json, report)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
