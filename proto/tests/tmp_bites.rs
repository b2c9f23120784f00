mod sim;
use p2pshare_proto::Bugs;
#[test]
fn count() {
    let n: u64 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let all = [
        (
            "answers_from_any_conn",
            Bugs {
                answers_from_any_conn: true,
                ..Bugs::default()
            },
        ),
        (
            "never_pause",
            Bugs {
                never_pause: true,
                ..Bugs::default()
            },
        ),
        (
            "no_read_deadline",
            Bugs {
                no_read_deadline: true,
                ..Bugs::default()
            },
        ),
        (
            "no_table_cap_per_ip",
            Bugs {
                no_table_cap_per_ip: true,
                ..Bugs::default()
            },
        ),
        (
            "no_request_deadline",
            Bugs {
                no_request_deadline: true,
                ..Bugs::default()
            },
        ),
    ];
    for (name, bugs) in all {
        let s = sim::sweep_on(0..n, bugs, 2, sim::Until::End);
        let mut kinds = std::collections::BTreeMap::new();
        for f in &s.failures {
            *kinds.entry(format!("{:?}", f.kind)).or_insert(0) += 1;
        }
        let first: Vec<u64> = s.failures.iter().take(5).map(|f| f.seed).collect();
        println!(
            "{name}: {} of {} seeds fail: {kinds:?} first {first:?}",
            s.failures.len(),
            s.runs
        );
    }
}
