#[test]
fn probe() {
    let n: u64 = std::env::var("N").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    let start: u64 = std::env::var("S").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut hits = std::collections::BTreeMap::new();
    for seed in start..start + n {
        let sc = sim::scenarios::for_seed("swarm", seed).unwrap();
        let r = sim::run(&sc, seed);
        if let Err(v) = sim::check::check(&sc, &r) { println!("FAIL {seed}: {v}"); }
        for g in sc.goals() { if g.hit(&sc, &r) { *hits.entry(format!("{g:?}")).or_insert(0) += 1; } }
    }
    println!("{hits:?}");
}
