//! The exactly-once gate, without a runtime: each case is a script of calls
//! and the answer each must give, then the last id and the repair left.

use std::ops::RangeInclusive;

use transport::{Gate, Offer, PageRequest, Repaired, Stalled};

/// One call on the gate and the answer it must give.
#[derive(Debug)]
enum Call {
    /// An event of a full stream (its previous id is `id - 1`).
    Offer(u64, Offer),
    /// An event of a filtered stream: id, `prev`.
    Chain(u64, u64, Offer),
    /// A filtered repair page's event: id, `prev`.
    FeedChain(u64, u64, Repaired),
    Behind(u64, Option<RangeInclusive<u64>>),
    Start(u64, Option<RangeInclusive<u64>>),
    /// `next_page` with a page limit of 3.
    Page(Option<PageRequest>),
    Feed(u64, Repaired),
    Done(Result<(), Stalled>),
    Failed,
}

use Call::*;
use Offer::{Deliver, Duplicate, Gap};

const LIMIT: u64 = 3;

fn page(after: u64, limit: u64) -> Call {
    Page(Some(PageRequest { after, limit }))
}

fn stalled(after: u64) -> Call {
    Done(Err(Stalled { after }))
}

fn check(start_after: u64, calls: &[Call], last: u64, repairing: Option<RangeInclusive<u64>>) {
    let mut g = Gate::new(start_after);
    for (i, call) in calls.iter().enumerate() {
        let at = format!("call #{i} {call:?} on {g:?}");
        match call {
            Offer(id, want) => assert_eq!(&g.offer(*id, id - 1), want, "{at}"),
            Chain(id, prev, want) => assert_eq!(&g.offer(*id, *prev), want, "{at}"),
            FeedChain(id, prev, want) => assert_eq!(&g.feed(*id, *prev), want, "{at}"),
            Behind(head, want) => assert_eq!(&g.behind(*head), want, "{at}"),
            Start(upto, want) => assert_eq!(&g.start_repair(*upto), want, "{at}"),
            Page(want) => assert_eq!(&g.next_page(LIMIT), want, "{at}"),
            Feed(id, want) => assert_eq!(&g.feed(*id, id - 1), want, "{at}"),
            Done(want) => assert_eq!(&g.page_done(), want, "{at}"),
            Failed => g.repair_failed(),
        }
    }
    assert_eq!((g.last(), g.repairing()), (last, repairing), "at the end");
}

#[test]
fn in_order_ids_are_delivered() {
    check(
        0,
        &[Offer(1, Deliver), Offer(2, Deliver), Offer(3, Deliver)],
        3,
        None,
    );
}

#[test]
fn duplicates_are_dropped_without_moving_the_cursor() {
    check(
        0,
        &[
            Offer(1, Deliver),
            Offer(1, Duplicate),
            Offer(2, Deliver),
            Offer(1, Duplicate),
        ],
        2,
        None,
    );
}

#[test]
fn start_after_makes_earlier_ids_duplicates() {
    check(
        41,
        &[Offer(40, Duplicate), Offer(41, Duplicate), Offer(42, Deliver)],
        42,
        None,
    );
    check(41, &[Offer(44, Gap(42..=43))], 41, None);
}

#[test]
fn a_gap_is_reported_and_nothing_moves_until_it_is_repaired() {
    check(
        0,
        &[Offer(1, Deliver), Offer(5, Gap(2..=4)), Offer(5, Gap(2..=4))],
        1,
        None,
    );
}

#[test]
fn a_repair_delivers_the_gap_then_the_event_that_showed_it() {
    check(
        2,
        &[
            Offer(6, Gap(3..=5)),
            Start(5, Some(3..=5)),
            page(2, 3),
            Feed(3, Repaired::Deliver),
            Feed(4, Repaired::Deliver),
            Feed(5, Repaired::Deliver),
            Done(Ok(())),
            Page(None),
            Offer(6, Deliver),
        ],
        6,
        None,
    );
}

#[test]
fn a_long_gap_is_repaired_in_pages_of_the_limit() {
    check(
        0,
        &[
            Start(5, Some(1..=5)),
            page(0, 3),
            Feed(1, Repaired::Deliver),
            Feed(2, Repaired::Deliver),
            Feed(3, Repaired::Deliver),
            Done(Ok(())),
            page(3, 2),
            Feed(4, Repaired::Deliver),
            Feed(5, Repaired::Deliver),
            Done(Ok(())),
            Page(None),
        ],
        5,
        None,
    );
}

#[test]
fn repair_pages_that_overlap_or_overshoot_deliver_each_id_once() {
    check(
        2,
        &[
            Start(4, Some(3..=4)),
            page(2, 2),
            // The server's page starts before the cursor and runs past the gap.
            Feed(1, Repaired::Duplicate),
            Feed(2, Repaired::Duplicate),
            Feed(3, Repaired::Deliver),
            Feed(3, Repaired::Duplicate),
            Feed(4, Repaired::Deliver),
            Feed(5, Repaired::Skip),
            Done(Ok(())),
            Page(None),
            // Past the gap, 5 comes from the stream as usual.
            Offer(5, Deliver),
        ],
        5,
        None,
    );
}

#[test]
fn a_hole_inside_a_repair_page_is_asked_for_again() {
    check(
        0,
        &[
            Start(3, Some(1..=3)),
            page(0, 3),
            Feed(1, Repaired::Deliver),
            Feed(3, Repaired::Skip),
            Done(Ok(())),
            page(1, 2),
        ],
        1,
        Some(2..=3),
    );
}

#[test]
fn a_page_that_brings_nothing_new_abandons_the_repair() {
    check(
        0,
        &[Start(3, Some(1..=3)), page(0, 3), stalled(0), Page(None)],
        0,
        None,
    );
    check(
        0,
        &[
            Start(3, Some(1..=3)),
            page(0, 3),
            Feed(2, Repaired::Skip),
            Feed(3, Repaired::Skip),
            stalled(0),
        ],
        0,
        None,
    );
}

#[test]
fn a_repair_failing_part_way_keeps_what_it_delivered_and_the_next_offer_is_right() {
    check(
        1,
        &[
            Offer(6, Gap(2..=5)),
            Start(5, Some(2..=5)),
            page(1, 3),
            Feed(2, Repaired::Deliver),
            Feed(3, Repaired::Deliver),
            // The next fetch fails.
            Failed,
            Page(None),
            Offer(3, Duplicate),
            Offer(6, Gap(4..=5)),
            Offer(4, Deliver),
        ],
        4,
        None,
    );
}

#[test]
fn a_repair_can_be_extended_and_ends_when_the_stream_fills_it() {
    check(
        0,
        &[
            Start(2, Some(1..=2)),
            Start(4, Some(1..=4)),
            // Shorter than what is already asked for: the repair keeps 4.
            Start(3, Some(1..=4)),
            Offer(1, Deliver),
            Offer(2, Deliver),
            Offer(3, Deliver),
            Offer(4, Deliver),
            Page(None),
        ],
        4,
        None,
    );
}

#[test]
fn nothing_to_repair_starts_no_repair() {
    check(
        5,
        &[Start(5, None), Start(3, None), Page(None), Done(Ok(()))],
        5,
        None,
    );
    check(
        0,
        &[
            Feed(1, Repaired::Skip),
            Offer(1, Deliver),
            Feed(1, Repaired::Duplicate),
        ],
        1,
        None,
    );
}

#[test]
fn a_head_past_the_cursor_is_a_gap_to_repair() {
    check(
        3,
        &[Behind(3, None), Behind(2, None), Behind(5, Some(4..=5))],
        3,
        None,
    );
}

#[test]
fn a_filtered_stream_has_holes_in_ids_but_an_unbroken_prev_chain() {
    check(
        0,
        &[
            Chain(4, 0, Deliver),
            Chain(9, 4, Deliver),
            Chain(9, 4, Duplicate),
            Chain(30, 9, Deliver),
        ],
        30,
        None,
    );
}

#[test]
fn a_prev_older_than_the_start_says_nothing_was_missed() {
    // Started after 20: the last match before 25 was 12, before it.
    check(20, &[Chain(25, 12, Deliver)], 25, None);
}

#[test]
fn a_broken_chain_is_a_gap_up_to_the_prev_it_names() {
    check(
        4,
        &[
            // 7 matched and never came: the gap ends at it.
            Chain(11, 7, Gap(5..=7)),
            Start(7, Some(5..=7)),
            page(4, 3),
            // The filtered page: 7 (prev 4), then 11 again.
            FeedChain(7, 4, Repaired::Deliver),
            Chain(11, 7, Deliver),
        ],
        11,
        None,
    );
}

#[test]
fn a_filtered_heartbeat_names_the_last_match_it_scanned() {
    check(9, &[Behind(9, None), Behind(15, Some(10..=15))], 9, None);
}

#[test]
fn a_filtered_repair_page_skips_what_does_not_follow() {
    check(
        4,
        &[
            Start(12, Some(5..=12)),
            page(4, 3),
            // 12's prev is 8, which is not delivered: skipped.
            FeedChain(12, 8, Repaired::Skip),
            FeedChain(8, 2, Repaired::Deliver),
            FeedChain(12, 8, Repaired::Deliver),
            Done(Ok(())),
        ],
        12,
        None,
    );
}
