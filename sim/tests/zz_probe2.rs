#[test]
fn probe2() {
    let seed: u64 = std::env::var("S").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let c: usize = std::env::var("C").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let sc = sim::scenarios::for_seed("swarm", seed).unwrap();
    let r = sim::run(&sc, seed);
    for k in r.conns.iter().filter(|k| k.client == c) { println!("{k:?}"); }
    for t in &r.clients[c].timeline { println!("{} {t}", t.at().as_millis()); }
}
