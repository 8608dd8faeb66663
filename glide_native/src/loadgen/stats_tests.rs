use super::*;

fn id(sender: u32, n: u32) -> MsgId {
    MsgId { run: 9, sender, n }
}

fn one_to_one() -> State {
    let mut s = State::new(3, 4, false, 9);
    s.roles = vec![
        Role::Sender { peer: 1, done: false },
        Role::Sender { peer: 0, done: false },
        Role::Sender { peer: 0, done: false },
    ];
    s.senders_left = 3;
    s
}

#[test]
fn delivery_duplicates_misroutes_reorders_and_loss() {
    let mut s = one_to_one();
    for n in 0..3 {
        s.on_sent(10);
        s.on_ack(0, Some(id(0, n)));
    }
    s.on_ack(0, Some(id(0, 0)));
    assert_eq!((s.c.acked, s.c.duplicate_acks), (3, 1));
    s.on_delivery(1, Some((id(0, 1), 100)), 1100);
    s.on_delivery(1, Some((id(0, 0), 100)), 1200);
    s.on_delivery(1, Some((id(0, 0), 100)), 1300);
    s.on_delivery(2, Some((id(1, 0), 100)), 1300); // 1's peer is 0, not 2
    assert_eq!(s.c.delivered, 3);
    assert_eq!(s.c.duplicates, 1);
    assert_eq!(s.c.reordered, 1);
    assert_eq!(s.c.misrouted, 1);
    assert_eq!(s.hist.count(), 3);
    // Message (0, 2) was acked and never delivered.
    assert_eq!(s.lost(), 1);
    let snap = s.snapshot("done", 1.0, true);
    assert_eq!(snap.lost, Some(1));
    assert_eq!(snap.unacked, Some(0));
    assert!(!s.complete(false));
}

#[test]
fn foreign_ids_are_not_counted_as_ours() {
    let mut s = one_to_one();
    s.on_delivery(0, None, 5);
    s.on_delivery(
        0,
        Some((
            MsgId {
                run: 8,
                sender: 1,
                n: 0,
            },
            0,
        )),
        5,
    );
    s.on_delivery(0, Some((id(7, 0), 0)), 5);
    s.on_delivery(0, Some((id(1, 4), 0)), 5); // n beyond messages
    s.on_ack(0, Some(id(1, 0))); // someone else's ack
    s.on_ack(0, None);
    assert_eq!(s.c.foreign, 6);
    assert_eq!((s.c.delivered, s.c.acked), (0, 0));
}

#[test]
fn completion_needs_acks_deliveries_and_receipts() {
    let mut s = one_to_one();
    s.on_sent(0);
    assert!(!s.complete(false));
    s.on_ack(0, Some(id(0, 0)));
    s.on_delivery(1, Some((id(0, 0), 0)), 10);
    assert!(s.complete(false));
    assert!(!s.complete(true));
    s.c.receipts += 1;
    assert!(s.complete(true));
    assert_eq!(s.snapshot("done", 0.0, true).delivery_rate, 1.0);
}

#[test]
fn group_accounting_expects_every_other_member() {
    let mut s = State::new(3, 2, true, 9);
    s.members = 3;
    s.roles[0] = Role::Sender { peer: 0, done: false };
    s.on_sent(0);
    s.on_ack(0, Some(id(0, 0)));
    assert_eq!(s.expected_deliveries(), 2);
    s.on_delivery(0, Some((id(0, 0), 0)), 5);
    assert_eq!(s.c.echoes, 1);
    s.on_delivery(1, Some((id(0, 0), 0)), 5);
    s.on_delivery(1, Some((id(0, 0), 0)), 6);
    assert_eq!((s.c.delivered, s.c.duplicates), (1, 1));
    assert_eq!(s.lost(), 1);
    s.on_delivery(2, Some((id(0, 0), 0)), 7);
    assert!(s.complete(false));
}

#[test]
fn series_hold_per_second_deltas() {
    let mut s = one_to_one();
    s.c.frames_in = 10;
    s.c.online = 2;
    s.sample(1.0);
    s.c.frames_in = 25;
    s.error(ErrKind::Io);
    s.sample(2.0);
    assert_eq!(s.series.frames_in, vec![10, 15]);
    assert_eq!(s.series.online, vec![2, 2]);
    assert_eq!(s.series.errors, vec![0, 1]);
    assert_eq!(s.snapshot("x", 0.0, false).errors_by_kind.get("io"), Some(&1));
}

#[test]
fn sender_done_is_idempotent() {
    let mut s = one_to_one();
    s.sender_done(0);
    s.sender_done(0);
    s.sender_done(99);
    assert_eq!(s.senders_left, 2);
}
